/**
 * Finds a working OCI runtime by trying it: crun first (faster), then runc. A binary on PATH is not
 * enough — crun, for one, refuses hosts whose cgroups are in hybrid mode — so each candidate runs
 * a tiny real container (the host's `echo` of a fresh marker, from read-only binds of the host's /usr
 * and friends) with the same namespaces and mounts a RUN step uses; only the marker in its output
 * proves the container ran (a binary that exits 0 at once is no runtime). The answer is cached per store
 * (the trial runs in its work dir), in memory and on disk for later processes on the same host with
 * the same candidate binaries (store/probe-record.ts).
 */
import { accessSync, constants, lstatSync, readlinkSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { delimiter, isAbsolute, join } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { storeSlot, type Store } from '../store/store.js'
import { buildSpec, type OciMount } from './oci-spec.js'
import { ociRuntime, type RuntimeOptions } from './runc.js'
import { rememberedProbe } from '../store/probe-record.js'
import { userNamespace } from '../host/user-namespace.js'
import type { Runtime } from './runtime.js'
import { ownerTag } from '../util/owner.js'

export const RUNTIME_CANDIDATES: readonly string[] = Object.freeze(['crun', 'runc'])

/** The runtime found per `preferred` name ('' for the default order). */
const FOUND = storeSlot('oci runtime', () => new Map<string, Promise<Runtime>>())

export interface DetectOptions {
  /** A runtime name or path to use instead of trying crun then runc. */
  readonly preferred?: string
  /** The store whose work dir holds the trial bundle, and which remembers the answer. */
  readonly store: Store
  /** PATH to search. @default process.env.PATH plus the sbin dirs */
  readonly path?: string
}

/** The runtime to use, found and tried once per store (per `preferred`). */
export function detectRuntime(opts: DetectOptions): Promise<Runtime> {
  const key = opts.preferred ?? ''
  const cache = opts.store.local(FOUND)
  let p = cache.get(key)
  if (!p) {
    p = detect(opts)
    cache.set(key, p)
    p.catch(() => cache.delete(key)) // a later call may succeed once something is installed
  }
  return p
}

/** Where `name` is on PATH (or itself when it is a path), or undefined. */
export function which(name: string, pathVar = defaultPath()): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined
  for (const dir of pathVar.split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue
    const p = join(dir, name)
    if (isExecutable(p)) return p
  }
  return undefined
}

function defaultPath(): string {
  // Library code reads no environment settings; PATH is how the OS finds programs, not a setting.
  const sbin = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
  return [process.env['PATH'] ?? '', ...sbin].join(delimiter)
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK)
    return lstatSync(p).isFile() || lstatSync(p).isSymbolicLink()
  } catch {
    return false
  }
}

async function detect(opts: DetectOptions): Promise<Runtime> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    throw new ImagesmithError(
      ErrorCodes.RUNTIME_NOT_FOUND,
      process.platform === 'linux'
        ? `RUN steps run the OCI runtime as root, or as root of a user namespace (uid ${process.getuid?.()} is neither): build() starts that namespace for a plain user itself (README: Rootless builds)`
        : `RUN steps need Linux to run an OCI runtime (this is ${process.platform})`,
      { platform: process.platform },
    )
  }
  const candidates = opts.preferred ? [opts.preferred] : RUNTIME_CANDIDATES
  const found = candidates.map((name) => ({ name, binary: which(name, opts.path ?? defaultPath()) }))
  // The binary that passed its trial in an earlier process, while every candidate is the same file;
  // a failure is never recorded (the next build tries again, and says why).
  const passed = await rememberedProbe(opts.store.layout.dir('probes'), opts.store.layout.root, 'oci runtime',
    found.map(({ name, binary }) => `${name}=${binary ? fileStamp(binary) : '-'}`),
    (v): v is string => typeof v === 'string' && found.some((f) => f.binary === v),
    async () => {
      const { binary, tried } = await firstWorking(found, opts)
      if (binary !== undefined) return binary
      const wanted = opts.preferred ? `the runtime ${JSON.stringify(opts.preferred)}` : 'crun or runc'
      throw new ImagesmithError(
        ErrorCodes.RUNTIME_NOT_FOUND,
        `no working OCI runtime for RUN: install ${wanted} (Debian/Ubuntu: apt-get install runc) or name one with the runtime option.\n` +
          tried.map((t) => `  ${t}`).join('\n'),
        { tried },
      )
    })
  return ociRuntime(passed, runtimeOptions())
}

/** A binary's path as it resolves, inode, size and mtime: a replaced or upgraded runtime is tried again. */
function fileStamp(p: string): string {
  try {
    const st = statSync(p)
    return `${p}:${st.ino}:${st.size}:${st.mtimeMs}`
  } catch {
    return `${p}:?`
  }
}

/** Tries `found` in order: the first binary whose trial passes, or why none did. */
async function firstWorking(found: readonly { name: string; binary: string | undefined }[], opts: DetectOptions): Promise<{ binary?: string; tried: string[] }> {
  const tried: string[] = []
  for (const { name, binary } of found) {
    if (!binary) {
      tried.push(`${name}: not found`)
      continue
    }
    const runtime = ociRuntime(binary, runtimeOptions())
    const failure = await trial(runtime, opts.store.workDir())
    if (failure === undefined) return { binary, tried }
    if (opts.preferred) {
      throw new ImagesmithError(ErrorCodes.RUNTIME_FAILED, `the OCI runtime ${binary} does not run containers: ${failure}`, { runtime: binary, reason: failure })
    }
    tried.push(`${binary}: ${failure}`)
  }
  return { tried }
}

/** In a rootless build's namespace the runtime keeps its state in the step's dir (the host's /run/runc is root's). */
function runtimeOptions(): RuntimeOptions {
  return userNamespace() ? { stateInBundle: true } : {}
}

/** Runs the host's `echo MARKER` in a throwaway container; undefined when the marker came back, else why not. */
async function trial(runtime: Runtime, scratch: string): Promise<string | undefined> {
  await mkdir(scratch, { recursive: true })
  const bundle = await mkdtemp(join(scratch, `detect-${ownerTag()}-`))
  try {
    const rootfs = join(bundle, 'rootfs')
    await mkdir(rootfs)
    const mounts: OciMount[] = []
    for (const d of ['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
      let st
      try {
        st = lstatSync(`/${d}`)
      } catch {
        continue
      }
      if (st.isSymbolicLink()) await symlink(readlinkSync(`/${d}`), join(rootfs, d))
      else if (st.isDirectory()) mounts.push({ destination: `/${d}`, type: 'bind', source: `/${d}`, options: ['rbind', 'ro'] })
    }
    const echoBin = ['/usr/bin/echo', '/bin/echo'].find((p) => isExecutable(p)) ?? '/bin/echo'
    const marker = `imagesmith-trial-${randomBytes(8).toString('hex')}`
    const spec = buildSpec({
      args: [echoBin, marker],
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      user: { uid: 0, gid: 0, additionalGids: [] },
      rootfs,
      hostname: 'imagesmith',
      network: 'none',
      mounts,
    })
    let output = ''
    const { exitCode } = await runtime.run(spec, bundle, AbortSignal.timeout(30_000), (_s, d) => {
      if (output.length < 4096) output += d.toString()
    })
    const tail = output.trim().split('\n').slice(-3).join(' | ')
    if (exitCode !== 0) return `trial container exited ${exitCode}${tail ? `: ${tail}` : ''}`
    if (!output.includes(marker)) return `exited 0 without running the trial container (its command's output never came)${tail ? `: ${tail}` : ''}`
    return undefined
  } catch (e) {
    return (e as Error).message
  } finally {
    await rm(bundle, { recursive: true, force: true }).catch(() => undefined)
  }
}
