/**
 * `imagesmith build` with a Dockerfile, as `docker build` takes one: `-f FILE` (or `-f -` for
 * standard input), the context a directory, a tarball (plain or compressed) or `-` (a tarball on
 * standard input). A tarball is unpacked into a temp dir under the store's tmp, named with our pid,
 * so a build killed mid-way leaves nothing the next build does not sweep.
 */
import { execFile } from 'node:child_process'
import { createWriteStream, promises as fsp, statSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'
import { fromDockerfile, type DockerfileImport } from '../dockerfile/import.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { makeTempDir } from '../store/atomic-write.js'
import { Store } from '../store/store.js'
import { UsageError, one, type ParsedArgs } from './args.js'
import { buildContexts } from './buildx-flags.js'

const DOCKERFILE_NAME = /^(Dockerfile|Containerfile)([.-].*)?$|\.(Dockerfile|Containerfile)$/i

// Where `build` and `graph` import it from with the rest of a Dockerfile build's pieces.
export { isDockerfileBuild } from './args.js'

export interface DockerfileBuild {
  readonly imported: DockerfileImport
  /** The context directory (a tarball's unpacked copy). */
  readonly context: string
  /** Removes what the build unpacked. */
  cleanup(): Promise<void>
}

export interface DockerfileBuildInputs {
  readonly buildArgs: Readonly<Record<string, string>>
  readonly platform?: string
  readonly cacheDir: string
  readonly stdin: Readable
}

export async function loadDockerfileBuild(args: ParsedArgs, inputs: DockerfileBuildInputs): Promise<DockerfileBuild> {
  if (args.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[1])}`)
  let file = one(args, '--file')
  let contextArg = args.positionals[0] ?? one(args, '--context') ?? '.'
  if (file === undefined && DOCKERFILE_NAME.test(basename(contextArg)) && isFile(contextArg)) {
    // `imagesmith build Dockerfile`: the file names the Dockerfile, the context is --context or '.'.
    file = contextArg
    contextArg = one(args, '--context') ?? '.'
  }
  if (file === '-' && contextArg === '-') throw new UsageError('the Dockerfile and the context cannot both come from standard input')

  let tmp: string | undefined
  const cleanup = async () => {
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true })
  }
  try {
    let context: string
    let tarball = false
    if (contextArg === '-' || isFile(contextArg)) {
      const store = new Store(inputs.cacheDir)
      await store.init()
      tmp = await makeTempDir(store.layout.dir('tmp'), 'context')
      let archive = resolve(contextArg)
      if (contextArg === '-') {
        archive = join(tmp, 'context.tar')
        await pipeline(inputs.stdin, createWriteStream(archive))
      }
      context = join(tmp, 'ctx')
      await fsp.mkdir(context)
      await unpackContext(archive, context)
      if (contextArg === '-') await fsp.rm(archive, { force: true })
      tarball = true
    } else {
      context = resolve(contextArg)
    }

    let source: string
    if (file === '-') source = await readAll(inputs.stdin)
    else if (file === undefined) source = join(context, 'Dockerfile')
    // In a tarball, -f names a file inside it (as docker build reads it); otherwise a path from here.
    else source = tarball ? join(context, file) : resolve(file)
    if (file !== '-' && !isFile(source)) {
      throw new ImagesmithError(ErrorCodes.CONTEXT_NOT_FOUND, `unable to read the Dockerfile: ${source} is not a file`, { path: source })
    }
    const target = one(args, '--target')
    const imported = fromDockerfile(source, {
      buildArgs: inputs.buildArgs,
      contextDir: context,
      ...(target !== undefined ? { target } : {}),
      ...(inputs.platform !== undefined ? { platform: inputs.platform } : {}),
      ...(file === '-' ? { filename: 'Dockerfile (stdin)' } : {}),
      ...buildContexts(args),
    })
    return { imported, context, cleanup }
  } catch (e) {
    await cleanup()
    throw e
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile()
  } catch {
    return false
  }
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer))
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * GNU tar (compression told by the bytes), made safe for an untrusted archive: members are listed
 * first and absolute names, `..` components and device nodes refused; owners are not restored; GNU
 * tar itself never writes through a symlink the archive made (it defers such links to the end).
 */
async function unpackContext(archive: string, dest: string): Promise<void> {
  // Names from -t (one a line, odd bytes escaped), types from -tv's first column, in the same order.
  const names = (await tar(['-tf', archive], archive)).split('\n').filter((l) => l !== '')
  const types = (await tar(['-tvf', archive], archive)).split('\n').filter((l) => l !== '').map((l) => l[0])
  names.forEach((name, i) => {
    if (types[i] === 'b' || types[i] === 'c' || types[i] === 'p') throw badContext(archive, `${name}: device or fifo in the context`)
    if (name.startsWith('/') || name.split('/').includes('..')) throw badContext(archive, `${name}: member outside the context`)
  })
  await tar(['-xf', archive, '-C', dest, '--no-same-owner', '--no-overwrite-dir', '--delay-directory-restore'], archive)
}

function badContext(archive: string, why: string): ImagesmithError {
  return new ImagesmithError(ErrorCodes.CONTEXT_UNREADABLE, `unsafe context tarball ${archive}: ${why}`, { path: archive, reason: 'unsafe' })
}

function tar(argv: string[], archive: string): Promise<string> {
  return new Promise((ok, fail) => {
    execFile('tar', argv, { maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err) fail(new ImagesmithError(ErrorCodes.CONTEXT_UNREADABLE, `cannot unpack the context tarball ${archive}: ${stderr.trim() || err.message}`, { path: archive }, { cause: err }))
      else ok(stdout)
    })
  })
}
