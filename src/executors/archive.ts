/**
 * ADD's unpacking of local tar archives (plain, gzip, bzip2, xz; told apart by magic bytes, never
 * by name) into layer entries under the destination. Nothing is extracted onto the host's
 * filesystem tree: bodies go to numbered files in a private temp dir inside the store (or stay in
 * memory when small) and the entries point at them.
 *
 * Safety rules (BuildKit/moby chrootarchive's, made strict because the entries end up in an image):
 * an entry whose name climbs out of the destination with `..`, a hard link to anything that is not
 * an earlier file of the same archive inside the destination, a symlink whose target resolves
 * outside the destination, or an entry whose path runs through a symlink of the archive are all
 * refused with {@link UnsafeArchiveError}. Absolute names are taken relative to the destination.
 */
import { spawn } from 'node:child_process'
import { createReadStream, createWriteStream } from 'node:fs'
import { join, posix } from 'node:path'
import type { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { createGunzip, gunzipSync } from 'node:zlib'
import { Parser, type ReadEntry } from 'tar'
import { abortError, ErrorCodes, ImagesmithError, UnsafeArchiveError } from '../errors.js'
import type { Owner, Planned } from '../context/collect.js'
import { isTarHeader, readHeadSync, sniff } from '../util/sniff.js'

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz'

/** Bodies up to this size are held in memory instead of a temp file. */
const INLINE_MAX = 64 * 1024

function decompressHead(kind: Exclude<ArchiveKind, 'tar'>, path: string): Promise<Buffer> {
  if (kind === 'gzip') {
    try {
      return Promise.resolve(gunzipSync(readHeadSync(path, 64 * 1024), { finishFlush: 2 /* Z_SYNC_FLUSH: a partial stream is fine */ }))
    } catch {
      return Promise.resolve(Buffer.alloc(0))
    }
  }
  return new Promise((resolve) => {
    const child = spawn(kind === 'bzip2' ? 'bzip2' : 'xz', ['-dc', path], { stdio: ['ignore', 'pipe', 'ignore'] })
    const chunks: Buffer[] = []
    let len = 0
    let done = false
    const finish = (): void => {
      if (done) return
      done = true
      child.kill()
      resolve(Buffer.concat(chunks))
    }
    child.stdout.on('data', (c: Buffer) => {
      chunks.push(c)
      len += c.length
      if (len >= 512) finish()
    })
    child.on('close', finish)
    child.on('error', finish)
  })
}

/**
 * What kind of tar archive `path` is, or undefined when it is no archive: the compression is told
 * by magic bytes, and the (decompressed) first block must be a valid tar header (BuildKit's
 * isArchivePath reads one header the same way).
 */
export async function detectArchive(path: string): Promise<ArchiveKind | undefined> {
  const magic = sniff(readHeadSync(path))
  // ADD unpacks tar, gzip, bzip2 and xz; anything else (zstd included) is copied as it is.
  if (magic === 'tar') return 'tar'
  if (magic !== 'gzip' && magic !== 'bzip2' && magic !== 'xz') return undefined
  return isTarHeader(await decompressHead(magic, path)) ? magic : undefined
}

/** `name` is what errors call the archive (the source as written; `path` may be a private copy). */
function openDecompressed(path: string, kind: ArchiveKind, name: string): { stream: Readable; wait: () => Promise<void> } {
  if (kind === 'tar') return { stream: createReadStream(path, { highWaterMark: 1 << 20 }), wait: async () => {} }
  if (kind === 'gzip') return { stream: createReadStream(path, { highWaterMark: 1 << 20 }).pipe(createGunzip()), wait: async () => {} }
  const tool = kind === 'bzip2' ? 'bzip2' : 'xz'
  const child = spawn(tool, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new ImagesmithError(ErrorCodes.TOOL_NOT_FOUND, `cannot run ${tool} to decompress ${name}: ${e.message}`, { path: name, tool }, { cause: e })))
    child.on('close', (code, sig) => {
      if (code === 0 || sig === 'SIGTERM') resolve()
      else reject(new ImagesmithError(ErrorCodes.ADD_ARCHIVE_INVALID, `${tool} -dc ${name} failed (${code ?? sig}): ${stderr.replaceAll(path, name).trim()}`, { path: name, tool, stderr }))
    })
  })
  return { stream: child.stdout, wait: () => exited }
}

export interface ExtractOptions {
  /** Image path of the destination directory ('' = root). */
  readonly dest: string
  /** Private directory (inside the store) for extracted bodies; the caller removes it. */
  readonly tmpDir: string
  /** The source as the user wrote it, for error messages. */
  readonly archiveName: string
  /**
   * --chown: owns only the directories the archive implies but does not list (as buildah 1.28;
   * docker 20.10 makes them 0:0). The archive's entries keep their own owners: buildah 1.28 and
   * docker 20.10's BuildKit ignore --chown for a local archive (BuildKit 0.23 and later apply it).
   * Nor is there a --chmod: the unpack takes no mode, entries keep their own.
   */
  readonly impliedOwner?: Owner
  /** mtime of directories the archive implies but does not list. */
  readonly mtime: number
  readonly signal?: AbortSignal
}

function typeOf(e: ReadEntry): Planned['type'] | 'hardlink' | undefined {
  switch (e.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return 'file'
    case 'Directory':
      return 'dir'
    case 'SymbolicLink':
      return 'symlink'
    case 'Link':
      return 'hardlink'
    case 'CharacterDevice':
      return 'char'
    case 'BlockDevice':
      return 'block'
    case 'FIFO':
      return 'fifo'
    default:
      return undefined
  }
}

/** Path of `name` inside the destination ('' = the destination itself), or null if it climbs out. */
function inside(name: string): string | null {
  const c = posix.normalize(`/${name}`)
  // posix.normalize keeps a leading '..' only for relative paths; rooted, '..' is dropped at '/',
  // so check the raw components instead.
  let depth = 0
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (--depth < 0) return null
    } else depth++
  }
  return c === '/' ? '' : c.slice(1).replace(/\/+$/, '')
}

/**
 * Reads the archive and returns its entries (in archive order) placed under `opts.dest`, with
 * parent directories the archive leaves out added as 0755.
 */
export async function extractArchive(path: string, kind: ArchiveKind, opts: ExtractOptions): Promise<Planned[]> {
  const out: Planned[] = []
  const byPath = new Map<string, Planned>()
  const symlinks = new Set<string>()
  const writes: Promise<void>[] = []
  let n = 0
  let failure: unknown
  const under = (rel: string): string => (opts.dest === '' ? rel : rel === '' ? opts.dest : `${opts.dest}/${rel}`)
  const refuse = (entry: string, reason: string): never => {
    throw new UnsafeArchiveError(`refusing to unpack ${opts.archiveName}: entry ${JSON.stringify(entry)} ${reason}`, { archive: opts.archiveName, entry, reason })
  }

  const onEntry = (e: ReadEntry): void => {
    if (failure !== undefined) {
      e.resume()
      return
    }
    try {
      handle(e)
    } catch (err) {
      failure = err
      e.resume()
    }
  }

  const handle = (e: ReadEntry): void => {
    const type = typeOf(e)
    if (type === undefined) {
      e.resume()
      return
    }
    const rel = inside(e.path)
    if (rel === null) refuse(e.path, 'climbs out of the destination')
    if (rel === '') {
      // The archive's root directory ('./'): the destination itself; keep the destination's own metadata.
      e.resume()
      return
    }
    const parts = rel!.split('/')
    for (let i = 1; i < parts.length; i++) {
      if (symlinks.has(parts.slice(0, i).join('/'))) refuse(e.path, 'runs through a symlink of the archive')
    }
    const path = under(rel!)
    const base = {
      path,
      mode: (e.mode ?? 0o644) & 0o7777,
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: Math.floor((e.mtime?.getTime() ?? 0) / 1000),
    }
    let entry: Planned
    switch (type) {
      case 'dir':
        entry = { ...base, type: 'dir' }
        e.resume()
        break
      case 'symlink': {
        const target = e.linkpath ?? ''
        let ok: boolean
        if (target.startsWith('/')) {
          // Absolute targets point into the image: inside the destination only if under it.
          const c = posix.normalize(target)
          ok = opts.dest === '' || c === `/${opts.dest}` || c.startsWith(`/${opts.dest}/`)
        } else {
          ok = inside(`${posix.dirname(rel!)}/${target}`) !== null
        }
        if (!ok) refuse(e.path, `is a symlink to ${target}, outside the destination`)
        symlinks.add(rel!)
        entry = { ...base, mode: 0o777, type: 'symlink', linkname: target }
        e.resume()
        break
      }
      case 'hardlink': {
        const target = inside((e.linkpath ?? '').replace(/^\/+/, ''))
        const t = target === null || target === '' ? undefined : byPath.get(under(target))
        if (!t || t.type !== 'file') refuse(e.path, `is a hard link to ${e.linkpath ?? ''}, which is not a file of this archive inside the destination`)
        const f = t as Extract<Planned, { type: 'file' }>
        const group = f.linkGroup ?? f.path
        if (f.linkGroup === undefined) {
          const withGroup = { ...f, linkGroup: group }
          byPath.set(f.path, withGroup)
          out[out.indexOf(f)] = withGroup
        }
        // One inode: the link has the target's metadata, whatever its own header says.
        entry = { path, mode: f.mode, uid: f.uid, gid: f.gid, mtime: f.mtime, type: 'file', size: f.size, source: f.source, linkGroup: group }
        e.resume()
        break
      }
      case 'file': {
        const size = e.size
        if (size <= INLINE_MAX) {
          const chunks: Buffer[] = []
          const data = { buf: Buffer.alloc(0) }
          e.on('data', (c: Buffer) => chunks.push(c))
          writes.push(new Promise<void>((resolve) => e.on('end', () => {
            data.buf = Buffer.concat(chunks)
            resolve()
          })))
          // The body arrives after this returns: the getter hands out the bytes once they are in.
          entry = { ...base, type: 'file', size, source: { get data() { return data.buf } } as { data: Buffer } }
        } else {
          const file = join(opts.tmpDir, String(n++))
          const ws = createWriteStream(file)
          e.pipe(ws)
          writes.push(finished(ws).then(() => undefined))
          entry = { ...base, type: 'file', size, source: { path: file } }
        }
        break
      }
      case 'char':
      case 'block':
        entry = { ...base, type, devmajor: e.header.devmaj ?? 0, devminor: e.header.devmin ?? 0 }
        e.resume()
        break
      case 'fifo':
        entry = { ...base, type: 'fifo' }
        e.resume()
        break
    }
    const prev = byPath.get(path)
    if (prev) out.splice(out.indexOf(prev), 1)
    if (type !== 'symlink') symlinks.delete(rel!)
    byPath.set(path, entry!)
    out.push(entry!)
  }

  const { stream, wait } = openDecompressed(path, kind, opts.archiveName)
  const parser = new Parser({ onReadEntry: onEntry })
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      stream.destroy()
      reject(abortError(opts.signal!))
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    parser.on('end', () => {
      opts.signal?.removeEventListener('abort', onAbort)
      resolve()
    })
    parser.on('error', (e: unknown) => reject(e))
    stream.on('error', (e) => reject(e))
    stream.pipe(parser as unknown as NodeJS.WritableStream)
  })
  await wait()
  await Promise.all(writes)
  if (failure !== undefined) throw failure

  // Directories the archive implies but does not list.
  const have = new Set(out.map((e) => e.path))
  const implied: Planned[] = []
  for (const e of out) {
    const rel = opts.dest === '' ? e.path : e.path.slice(opts.dest.length + 1)
    const parts = rel.split('/')
    for (let i = 1; i < parts.length; i++) {
      const p = under(parts.slice(0, i).join('/'))
      if (!have.has(p)) {
        have.add(p)
        implied.push({ type: 'dir', path: p, mode: 0o755, uid: opts.impliedOwner?.uid ?? 0, gid: opts.impliedOwner?.gid ?? 0, mtime: opts.mtime })
      }
    }
  }
  return [...implied, ...out]
}
