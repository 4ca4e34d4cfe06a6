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
import { pipeline as pipe, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip, gunzipSync } from 'node:zlib'
import { abortError, ErrorCodes, ImagesmithError, UnsafeArchiveError } from '../errors.js'
import type { Owner, Planned } from '../context/collect.js'
import { readTarEntries, TarHeaderError, type TarEntry } from '../layer/tar-reader.js'
import { nameFromBytes } from '../util/names.js'
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

interface Decompressed {
  readonly stream: Readable
  /** Settles once the decompressor is done: rejects with ADD_ARCHIVE_INVALID when it failed. */
  wait(): Promise<void>
  /** Stops reading early: the stream is destroyed and a decompressor process killed. */
  stop(): void
}

/** `name` is what errors call the archive (the source as written; `path` may be a private copy). */
function openDecompressed(path: string, kind: ArchiveKind, name: string): Decompressed {
  if (kind === 'tar' || kind === 'gzip') {
    const file = createReadStream(path, { highWaterMark: 1 << 20 })
    // pipeline: a gunzip that fails or is destroyed closes the file too.
    const stream = kind === 'tar' ? file : pipe(file, createGunzip({ chunkSize: 256 << 10 }), () => {})
    return { stream, wait: async () => {}, stop: () => stream.destroy() }
  }
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
  // Awaited on success; after a failure elsewhere it may reject with nobody waiting.
  exited.catch(() => {})
  return {
    stream: child.stdout,
    wait: () => exited,
    stop: () => {
      child.stdout.destroy()
      child.kill()
    },
  }
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
  let n = 0
  const under = (rel: string): string => (opts.dest === '' ? rel : rel === '' ? opts.dest : `${opts.dest}/${rel}`)
  const refuse = (entry: string, reason: string): never => {
    throw new UnsafeArchiveError(`refusing to unpack ${opts.archiveName}: entry ${JSON.stringify(entry)} ${reason}`, { archive: opts.archiveName, entry, reason })
  }

  const handle = async (e: TarEntry): Promise<void> => {
    const h = e.header
    const type = h.type
    if (type === undefined) return
    // Names are bytes: the surrogateescape form keeps every one, and the layer writer writes them back.
    const name = nameFromBytes(h.name)
    const linkname = nameFromBytes(h.linkname)
    const rel = inside(name)
    if (rel === null) refuse(name, 'climbs out of the destination')
    // The archive's root directory ('./'): the destination itself; keep the destination's own metadata.
    if (rel === '') return
    const parts = rel!.split('/')
    for (let i = 1; i < parts.length; i++) {
      if (symlinks.has(parts.slice(0, i).join('/'))) refuse(name, 'runs through a symlink of the archive')
    }
    const path = under(rel!)
    const base = {
      path,
      mode: h.mode & 0o7777,
      uid: h.uid,
      gid: h.gid,
      mtime: h.mtime,
    }
    let entry: Planned
    switch (type) {
      case 'dir':
        entry = { ...base, type: 'dir' }
        break
      case 'symlink': {
        const target = linkname
        let ok: boolean
        if (target.startsWith('/')) {
          // Absolute targets point into the image: inside the destination only if under it.
          const c = posix.normalize(target)
          ok = opts.dest === '' || c === `/${opts.dest}` || c.startsWith(`/${opts.dest}/`)
        } else {
          ok = inside(`${posix.dirname(rel!)}/${target}`) !== null
        }
        if (!ok) refuse(name, `is a symlink to ${target}, outside the destination`)
        symlinks.add(rel!)
        entry = { ...base, mode: 0o777, type: 'symlink', linkname: target }
        break
      }
      case 'hardlink': {
        const target = inside(linkname.replace(/^\/+/, ''))
        const t = target === null || target === '' ? undefined : byPath.get(under(target))
        if (!t || t.type !== 'file') refuse(name, `is a hard link to ${linkname}, which is not a file of this archive inside the destination`)
        const f = t as Extract<Planned, { type: 'file' }>
        const group = f.linkGroup ?? f.path
        if (f.linkGroup === undefined) {
          const withGroup = { ...f, linkGroup: group }
          byPath.set(f.path, withGroup)
          out[out.indexOf(f)] = withGroup
        }
        // One inode: the link has the target's metadata, whatever its own header says.
        entry = { path, mode: f.mode, uid: f.uid, gid: f.gid, mtime: f.mtime, type: 'file', size: f.size, source: f.source, linkGroup: group }
        break
      }
      case 'file': {
        const size = h.size
        if (size <= INLINE_MAX) {
          const chunks: Buffer[] = []
          for await (const c of e.body()) chunks.push(c)
          // A copy of its own: the pieces are views into the reader's (1 MiB) chunks.
          entry = { ...base, type: 'file', size, source: { data: Buffer.concat(chunks, size) } }
        } else {
          const file = join(opts.tmpDir, String(n++))
          await pipeline(e.body(), createWriteStream(file))
          entry = { ...base, type: 'file', size, source: { path: file } }
        }
        break
      }
      case 'char':
      case 'block':
        entry = { ...base, type, devmajor: h.devmajor, devminor: h.devminor }
        break
      case 'fifo':
        entry = { ...base, type: 'fifo' }
        break
    }
    const prev = byPath.get(path)
    if (prev) out.splice(out.indexOf(prev), 1)
    if (type !== 'symlink') symlinks.delete(rel!)
    byPath.set(path, entry!)
    out.push(entry!)
  }

  if (opts.signal?.aborted) throw abortError(opts.signal)
  const dec = openDecompressed(path, kind, opts.archiveName)
  const onAbort = (): void => {
    dec.stream.destroy(abortError(opts.signal!))
    dec.stop()
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    for await (const e of readTarEntries(dec.stream)) await handle(e)
    await dec.wait()
  } catch (err) {
    dec.stop()
    throw await explain(err, dec, opts)
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
  }

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

/** The error to report for a failed read: the decompressor's own when it failed, typed otherwise. */
async function explain(err: unknown, dec: Decompressed, opts: ExtractOptions): Promise<unknown> {
  if (opts.signal?.aborted) return abortError(opts.signal)
  if (err instanceof ImagesmithError) return err
  // A cut-off or garbled stream from a decompressor that failed: its message says why.
  const failed = await dec.wait().then(() => undefined, (e: unknown) => e)
  if (failed !== undefined) return failed
  if (err instanceof TarHeaderError) {
    return new ImagesmithError(ErrorCodes.ADD_ARCHIVE_INVALID, `${opts.archiveName} is not a valid tar archive: ${err.message} (header at byte ${err.offset} of the tar stream)`, {
      path: opts.archiveName, offset: err.offset, reason: err.message,
    })
  }
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new ImagesmithError(ErrorCodes.ADD_ARCHIVE_INVALID, `cannot decompress ${opts.archiveName}: ${(err as Error).message}`, { path: opts.archiveName, reason: (err as Error).message }, { cause: err })
  }
  return err
}
