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
import { fsPath, nameBytes } from '../layer/names.js'
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

type StatRecord = [ino: string, size: string, mtimeNs: string, ctimeNs: string, sha256: string]

/**
 * Host path → content hash, valid while the file's (ino, size, mtimeNs, ctimeNs) stay the same.
 * Files changed in the last {@link RACY_NS} are never remembered: a write in the same clock tick
 * as the hash would otherwise go unseen (git's "racily clean" rule).
 */
export class StatCache {
  readonly #file: string | undefined
  readonly #old: Map<string, StatRecord>
  readonly #next = new Map<string, StatRecord>()
  #hits = 0

  private constructor(file: string | undefined, old: Map<string, StatRecord>) {
    this.#file = file
    this.#old = old
  }

  /** A cache kept in `<dir>/<scope hash>.json`; `scope` is e.g. the context directory. */
  static async open(dir: string, scope: string): Promise<StatCache> {
    const file = join(dir, `${createHash('sha256').update(scope).digest('hex').slice(0, 32)}.json`)
    try {
      const data = JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, StatRecord>
      return new StatCache(file, new Map(Object.entries(data)))
    } catch {
      return new StatCache(file, new Map())
    }
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
    const id: StatRecord = [String(st.ino), String(st.size), String(st.mtimeNs), String(st.ctimeNs), '']
    const old = this.#old.get(path)
    if (old && old[0] === id[0] && old[1] === id[1] && old[2] === id[2] && old[3] === id[3]) {
      this.#hits++
      this.#next.set(path, old)
      return old[4]
    }
    const sha = hashFileSync(path, buf)
    const wallNs = BigInt(Date.now()) * 1_000_000n
    if (wallNs - st.ctimeNs > RACY_NS && wallNs - st.mtimeNs > RACY_NS) {
      id[4] = sha
      this.#next.set(path, id)
    }
    return sha
  }

  /** Writes what this run hashed (entries for files not seen this run are kept too). */
  async save(): Promise<void> {
    if (this.#file === undefined) return
    const merged: Record<string, StatRecord> = {}
    for (const [k, v] of this.#old) merged[k] = v
    for (const [k, v] of this.#next) merged[k] = v
    await fsp.mkdir(dirname(this.#file), { recursive: true })
    // Not fsynced: a lost stat cache only means hashing the files again.
    await writeFileAtomic(this.#file, JSON.stringify(merged))
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
