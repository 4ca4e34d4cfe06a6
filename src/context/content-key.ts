/**
 * Content key of a COPY/ADD layer: sha256 over every entry's path, type, mode, owner, size, link
 * target and the sha256 of its bytes. Bytes are always what decides (a file rewritten with the same
 * size and mtime still changes the key; moby/buildkit#4950). A stat cache only saves re-reading a
 * file whose (ino, size, mtime, ctime) is the same as when it was last hashed.
 */
import { createHash } from 'node:crypto'
import { closeSync, lstatSync, openSync, promises as fsp, readSync, type BigIntStats } from 'node:fs'
import { dirname, join } from 'node:path'
import type { LayerEntry } from '../layer/entry.js'
import { fsPath, nameBytes } from '../util/names.js'
import type { Digest } from '../oci/media-types.js'
import { writeFileAtomic } from '../store/atomic-write.js'

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
 * Host path → content hash, valid while the file's (ino, size, mtimeNs, ctimeNs) stay the same.
 * Files changed in the last {@link RACY_NS} are never remembered: a write in the same clock tick
 * as the hash would otherwise go unseen (git's "racily clean" rule).
 *
 * One record is one string, `ino:size:mtimeNs:ctimeNs:sha256hex`, in one map: a 10k-file context
 * keeps 10k small strings rather than 10k five-element arrays (a third of the memory), and a run
 * that hashed nothing new writes nothing.
 */
export class StatCache {
  readonly #file: string | undefined
  readonly #records: Map<string, string>
  #hits = 0
  #dirty = false

  private constructor(file: string | undefined, records: Map<string, string>) {
    this.#file = file
    this.#records = records
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

  hash(path: string, buf: Buffer): string {
    if (this.#file === undefined) return hashFileSync(path, buf)
    let st: BigIntStats
    try {
      st = lstatSync(fsPath(path), { bigint: true })
    } catch {
      return hashFileSync(path, buf)
    }
    const stamp = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:`
    const old = this.#records.get(path)
    if (old !== undefined && old.length === stamp.length + 64 && old.startsWith(stamp)) {
      this.#hits++
      return old.slice(stamp.length)
    }
    const sha = hashFileSync(path, buf)
    const wallNs = BigInt(Date.now()) * 1_000_000n
    if (wallNs - st.ctimeNs > RACY_NS && wallNs - st.mtimeNs > RACY_NS) {
      this.#records.set(path, stamp + sha)
      this.#dirty = true
    }
    return sha
  }

  /** Writes the records (those of files not seen this run are kept too), if this run added any. */
  async save(): Promise<void> {
    if (this.#file === undefined || !this.#dirty) return
    await fsp.mkdir(dirname(this.#file), { recursive: true })
    // Not fsynced: a lost stat cache only means hashing the files again.
    await writeFileAtomic(this.#file, JSON.stringify(Object.fromEntries(this.#records)))
    this.#dirty = false
  }
}

const RACY_NS = 2_000_000_000n

/**
 * The content key of the final, sorted entries. File bytes come from `cache` (host files) or are
 * hashed directly (in-memory bodies).
 */
export function contentKey(entries: readonly LayerEntry[], cache: StatCache = StatCache.none()): Digest {
  const h = createHash('sha256')
  const buf = Buffer.allocUnsafe(CHUNK)
  for (const e of entries) {
    let extra: string | Buffer = ''
    switch (e.type) {
      case 'file':
        extra = `${e.size}\0${'data' in e.source ? createHash('sha256').update(e.source.data).digest('hex') : cache.hash(e.source.path, buf)}`
        break
      case 'symlink':
      case 'hardlink':
        extra = nameBytes(e.linkname)
        break
      case 'char':
      case 'block':
        extra = `${e.devmajor},${e.devminor}`
        break
      default:
        break
    }
    // Names as their bytes (names.ts): two names that differ only in non-UTF-8 bytes differ here too.
    h.update(nameBytes(e.path))
    h.update(`\0${e.type}\0${e.mode.toString(8)}\0${e.uid}:${e.gid}\0${e.mtime}\0`)
    h.update(extra)
    h.update('\n')
  }
  return `sha256:${h.digest('hex')}`
}
