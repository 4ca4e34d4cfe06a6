/**
 * Content key of a COPY/ADD layer: sha256 over every entry's path, type, mode, owner, size, link
 * target and the sha256 of its bytes. Bytes are always what decides (a file rewritten with the same
 * size and mtime still changes the key; moby/buildkit#4950). A stat cache only saves re-reading a
 * file whose (ino, size, mtime, ctime) is the same as when it was last hashed.
 */
import { createHash } from 'node:crypto'
import { closeSync, lstatSync, openSync, promises as fsp, readSync, writeSync, type Stats } from 'node:fs'
import { dirname, join } from 'node:path'
import type { LayerEntry } from '../layer/entry.js'
import { fsPath, nameBytes } from '../util/names.js'
import type { Digest } from '../oci/media-types.js'
import { writeFileAtomic } from '../store/atomic-write.js'
import { statStamp } from '../util/stat-stamp.js'

const CHUNK = 1 << 20

/** sha256 hex of a host file, read synchronously in 1 MiB chunks (1.9 GB/s per limits.md). */
export function hashFileSync(path: string, buf: Buffer = Buffer.allocUnsafe(CHUNK)): string {
  const h = createHash('sha256')
  const fd = openSync(fsPath(path), 'r')
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      h.update(n === buf.length ? buf : buf.subarray(0, n))
    }
  } finally {
    closeSync(fd)
  }
  return h.digest('hex')
}

/**
 * Copies a host file to `dest` (a new file) and returns the sha256 hex of the bytes copied, in one
 * pass: what was hashed is exactly what `dest` holds, whatever happens to the source meanwhile.
 */
export function copyFileHashedSync(path: string, dest: string, buf: Buffer = Buffer.allocUnsafe(CHUNK)): string {
  const h = createHash('sha256')
  const fd = openSync(fsPath(path), 'r')
  try {
    const out = openSync(dest, 'wx')
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null)
        if (n === 0) break
        const piece = n === buf.length ? buf : buf.subarray(0, n)
        h.update(piece)
        for (let at = 0; at < n;) at += writeSync(out, piece, at)
      }
    } finally {
      closeSync(out)
    }
  } finally {
    closeSync(fd)
  }
  return h.digest('hex')
}

/**
 * Host path → content hash, valid while the file's (ino, size, mtime, ctime) stay the same.
 * Files changed within their filesystem's clock tick of the hash ({@link racyWindowMs}) are never
 * remembered: a write in the same tick as the hash would otherwise go unseen (git's "racily clean"
 * rule).
 *
 * On disk a record is one string, `ino:size:mtimeMs:ctimeMs:sha256hex` (statStamp + hash). Records made in this run
 * are packed into one buffer (64 bytes each) until saved: 10k record strings (trees of pieces in
 * V8) kept for the whole build cost 10–15 MB of peak RSS on the 10k-file bench tree.
 */
export class StatCache {
  readonly #file: string | undefined
  /** Records read from the file. */
  readonly #old: Map<string, string>
  /** Records made in this run: path → offset into #packed. */
  readonly #fresh = new Map<string, number>()
  #packed = Buffer.alloc(0)
  #used = 0
  #hits = 0
  /** Records were dropped ({@link forget}): the file must be rewritten even if none were made. */
  #dropped = false
  /** A file was hashed whose record could not be kept (changed within the racy window, or unstattable). */
  #unsettled = false
  /** Host path → the stamp it had when this run hashed its bytes (settled files only): see {@link provenStamp}. */
  readonly #proven = new Map<string, string>()

  private constructor(file: string | undefined, old: Map<string, string>) {
    this.#file = file
    this.#old = old
  }

  /** A cache kept in `<dir>/<scope hash>.json`; `scope` is e.g. the context directory. */
  static async open(dir: string, scope: string): Promise<StatCache> {
    const file = join(dir, `${createHash('sha256').update(scope).digest('hex').slice(0, 32)}.json`)
    const records = new Map<string, string>()
    try {
      const data = JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown>
      // Records of another shape (an older cache file) are dropped: those files are hashed again.
      for (const k of Object.keys(data)) if (typeof data[k] === 'string') records.set(k, data[k])
    } catch {
      // no cache yet, or unreadable: start empty
    }
    return new StatCache(file, records)
  }

  /** A cache that remembers nothing (every file is hashed). */
  static none(): StatCache {
    return new StatCache(undefined, new Map())
  }

  get hits(): number {
    return this.#hits
  }

  /**
   * Whether every hash this cache gave is one it keeps a record of (a hit, or remembered now): then
   * a summary of the same stamps (context/tree-record.ts) is as safe to trust as the records are.
   */
  get settled(): boolean {
    return this.#file !== undefined && !this.#unsettled
  }

  /**
   * `seen` is the file's statStamp from the context walk: when the record matches it, the file is
   * not stat'ed again (the build uses the context as the walk saw it). On a miss the file is
   * stat'ed afresh before it is read, and that stamp is what gets remembered.
   */
  hash(path: string, buf: Buffer, seen?: string): string {
    if (this.#file === undefined) return hashFileSync(path, buf)
    const old = this.#old.get(path)
    if (seen !== undefined && old !== undefined && old.length === seen.length + 64 && old.startsWith(seen)) {
      this.#hits++
      return old.slice(seen.length)
    }
    let st: Stats
    try {
      st = lstatSync(fsPath(path))
    } catch {
      this.#unsettled = true
      return hashFileSync(path, buf)
    }
    if (old !== undefined) {
      const stamp = statStamp(st)
      if (old.length === stamp.length + 64 && old.startsWith(stamp)) {
        this.#hits++
        return old.slice(stamp.length)
      }
    }
    const sha = hashFileSync(path, buf)
    const now = Date.now()
    const racy = racyWindowMs(st)
    if (now - st.ctimeMs > racy && now - st.mtimeMs > racy) {
      this.#remember(path, st, sha)
      this.#proven.set(path, statStamp(st))
    } else this.#unsettled = true
    return sha
  }

  /**
   * The stamp under which `path` was hashed by this run, from its bytes, when the file had not changed
   * within the racy window: a file that still has that stamp when the layer writer opens it and
   * after reading it has the bytes the hash names (any write since moves its ctime), so the writer
   * need not hash it again. A hash taken from a record of an earlier run is never proven so: its
   * bytes are checked as they are written, which is what catches a record whose stamp hid a write.
   */
  provenStamp(path: string): string | undefined {
    return this.#proven.get(path)
  }

  /**
   * Drops the record of `path`: its bytes were found to differ from the hash it served (a write the
   * stamp did not show), so the next build hashes the file again instead of failing the same way.
   */
  forget(path: string): void {
    this.#proven.delete(path)
    const old = this.#old.delete(path)
    const fresh = this.#fresh.delete(path)
    if (old || fresh) this.#dropped = true
  }

  #remember(path: string, st: Stats, sha: string): void {
    if (this.#used + RECORD > this.#packed.length) {
      const next = Buffer.alloc(Math.max(64 * RECORD, this.#packed.length * 2))
      this.#packed.copy(next, 0, 0, this.#used)
      this.#packed = next
    }
    const p = this.#packed
    const o = this.#used
    p.writeDoubleLE(st.ino, o)
    p.writeDoubleLE(st.size, o + 8)
    p.writeDoubleLE(st.mtimeMs, o + 16)
    p.writeDoubleLE(st.ctimeMs, o + 24)
    p.write(sha, o + 32, 32, 'hex')
    this.#fresh.set(path, o)
    this.#used += RECORD
  }

  /** Writes the records (those of files not seen this run are kept too), if this run made any. */
  async save(): Promise<void> {
    if (this.#file === undefined || (this.#fresh.size === 0 && !this.#dropped)) return
    const p = this.#packed
    // The file's text goes out in pieces of ~256 KiB, so no 10k-string array lives on the heap.
    const pieces: Buffer[] = []
    let part: string[] = []
    let partLen = 0
    const add = (path: string, record: string): void => {
      const s = `${pieces.length === 0 && part.length === 0 ? '{' : ','}${JSON.stringify(path)}:"${record}"`
      part.push(s)
      partLen += s.length
      if (partLen >= 1 << 18) {
        pieces.push(Buffer.from(part.join('')))
        part = []
        partLen = 0
      }
    }
    for (const [path, record] of this.#old) if (!this.#fresh.has(path)) add(path, record)
    for (const [path, o] of this.#fresh) {
      const stamp = statStamp({ ino: p.readDoubleLE(o), size: p.readDoubleLE(o + 8), mtimeMs: p.readDoubleLE(o + 16), ctimeMs: p.readDoubleLE(o + 24) })
      add(path, stamp + p.toString('hex', o + 32, o + 64))
    }
    part.push('}')
    pieces.push(Buffer.from(part.join('')))
    await fsp.mkdir(dirname(this.#file), { recursive: true })
    // Not fsynced: a lost stat cache only means hashing the files again.
    await writeFileAtomic(this.#file, Buffer.concat(pieces))
  }
}

/** Bytes per packed record: ino, size, mtimeMs, ctimeMs (8-byte doubles, as lstat gives them), sha256 (32). */
const RECORD = 64

/**
 * How long after a change a file's stamp may still be shared by a later write. A stamp with a
 * sub-second part comes from a filesystem with fine timestamps, set from the kernel's clock, which
 * moves at least every 10 ms (HZ=100): 50 ms covers it, so a file saved a moment before a build is
 * remembered by it (a rebuild right after then finds it instead of hashing it again). Whole-second
 * stamps (FAT, HFS+, ext3's small inodes, some network and FUSE filesystems) keep 2 s, their
 * coarsest tick; a fine filesystem gives both times a zero fraction once in a million files.
 */
export function racyWindowMs(st: Pick<Stats, 'mtimeMs' | 'ctimeMs'>): number {
  return st.mtimeMs % 1000 !== 0 || st.ctimeMs % 1000 !== 0 ? FINE_RACY_MS : COARSE_RACY_MS
}

const FINE_RACY_MS = 50
const COARSE_RACY_MS = 2000

/**
 * The content key of the final, sorted entries. File bytes come from `cache` (host files) or are
 * hashed directly (in-memory bodies). `hashes`, when given, receives each host file's sha256 (hex)
 * as the key took it, by host path: the layer writer checks the bytes it reads against it
 * (`LayerWriteOptions.expect`), so a file edited after it was hashed fails the step instead of
 * being cached under a key that names other bytes.
 */
export function contentKey(
  entries: readonly LayerEntry[],
  cache: StatCache = StatCache.none(),
  onEntry?: (entry: LayerEntry, what: string) => void,
  hashes?: Map<string, string>,
): Digest {
  const h = createHash('sha256')
  const buf = Buffer.allocUnsafe(CHUNK)
  for (const e of entries) {
    let extra = ''
    let link: string | undefined
    switch (e.type) {
      case 'file': {
        let sha: string
        if ('data' in e.source) sha = createHash('sha256').update(e.source.data).digest('hex')
        else {
          sha = cache.hash(e.source.path, buf, e.source.stamp)
          hashes?.set(e.source.path, sha)
        }
        extra = `${e.size}\0${sha}`
        break
      }
      case 'symlink':
      case 'hardlink':
        link = e.linkname
        break
      case 'char':
      case 'block':
        extra = `${e.devmajor},${e.devminor}`
        break
      default:
        break
    }
    const meta = `${e.type}\0${e.mode.toString(8)}\0${e.uid}:${e.gid}\0${e.mtime}\0`
    // Names are hashed as their bytes (names.ts), so two names that differ only in non-UTF-8 bytes
    // differ here too. A name that is plain text has its UTF-8 as its bytes: then the whole line
    // goes in one update (the same bytes, so the same key; four hash calls per entry were a fifth
    // of a no-op COPY check).
    if (typeof fsPath(e.path) === 'string' && (link === undefined || typeof fsPath(link) === 'string')) {
      h.update(`${e.path}\0${meta}${link ?? extra}\n`)
      // What this entry contributed, for explaining misses (which files changed); never part of the
      // key. A link target appears as its bytes read as latin1, as before this fast path.
      if (onEntry) onEntry(e, meta + (link === undefined ? extra : Buffer.from(link, 'utf8').toString('latin1')))
      continue
    }
    const extraBytes: string | Buffer = link === undefined ? extra : nameBytes(link)
    h.update(nameBytes(e.path))
    h.update(`\0${meta}`)
    h.update(extraBytes)
    h.update('\n')
    if (onEntry) onEntry(e, meta + (typeof extraBytes === 'string' ? extraBytes : extraBytes.toString('latin1')))
  }
  return `sha256:${h.digest('hex')}`
}
