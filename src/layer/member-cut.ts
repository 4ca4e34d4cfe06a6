/**
 * Where a gzip layer is cut into members. The cuts are content-defined: they fall at entry
 * boundaries the entries themselves pick (a hash of the entry's path), so an edit, an added or a
 * removed file moves only the cuts of its own neighbourhood, and the members around it stay the
 * same bytes a rebuild can copy from the previous blob (members.ts). The rule reads the entries and
 * their tar offsets, never a previous build: a cold build and a rebuild of the same files cut alike.
 *
 * - After an entry, cut when the member holds at least {@link MEMBER_MIN} bytes and the entry's path
 *   is marked (1 in {@link MARK_ONE_IN}).
 * - A member never grows past {@link MEMBER_MAX} bytes: it is cut there, wherever that falls.
 * - An entry of {@link MEMBER_MAX} bytes or more starts a member, so its inner cuts (every
 *   MEMBER_MAX bytes) depend on that entry alone, not on what came before it.
 */
import type { LayerEntry } from './entry.js'
import type { FileWhere } from './tar-writer.js'

/** Smallest member a mark may close (the deflate window is 32 KiB: a member much smaller compresses worse). */
export const MEMBER_MIN = 512 << 10
/** Largest member (bounds memory: every member in flight is held whole, in and out). */
export const MEMBER_MAX = 2 << 20
/** One path in this many is a mark. */
export const MARK_ONE_IN = 8

/** The rule's three numbers. Part of every gzip layer's identity: other numbers, other bytes. */
export interface MemberCutSizes {
  readonly min: number
  readonly max: number
  readonly markOneIn: number
}

export const MEMBER_CUT: MemberCutSizes = Object.freeze({ min: MEMBER_MIN, max: MEMBER_MAX, markOneIn: MARK_ONE_IN })

/** FNV-1a over the path's UTF-16 code units: fixed forever, since it decides the layer's bytes. */
export function isMark(path: string, oneIn = MARK_ONE_IN): boolean {
  let h = 0x811c9dc5
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h % oneIn === 0
}

/**
 * Where a file's content lies in a member: [start, end) in member offsets, and, when the content
 * lies wholly in this member and its hash is known (and checked by the tar writer), its sha256 hex.
 */
export type DataRange = readonly [start: number, end: number, sha256?: string]

/**
 * A file content of a member whose bytes nobody has compared with their sha256 yet (the tar writer
 * left it to the member writer, {@link MemberSplitter.noteData}): [start, end) in member offsets.
 */
export interface PendingCheck {
  readonly start: number
  readonly end: number
  readonly sha256: string
  readonly where: FileWhere
}

/** An uncompressed member: its bytes, and where file contents lie in it. */
export interface RawMember {
  readonly bytes: Buffer
  readonly data: readonly DataRange[]
  /** Contents to check before the member's bytes are used (none when the tar writer checked them all). */
  readonly checks?: readonly PendingCheck[]
}

/**
 * Splits a tar stream into members: told where entries start and end (tar offsets, before the
 * bytes reach it), fed the bytes in order, it hands back each member whole as soon as its last byte
 * arrives. A member buffer is valid until it is given back with {@link MemberSplitter.release}.
 */
export class MemberSplitter {
  /** Cuts decided by entries that the bytes have not reached yet, ascending. */
  readonly #cuts: number[] = []
  /** File contents not yet wholly behind a cut: [start, end) tar offsets, ascending; with where when its check is ours. */
  readonly #data: [number, number, string | undefined, FileWhere | undefined][] = []
  /** The last cut an entry decided: MEMBER_MAX cuts count from it. */
  #natural = 0
  /** Tar offset of the current member's first byte. */
  #start = 0
  #buf: Buffer | undefined
  #len = 0
  readonly #free: Buffer[] = []
  readonly #keep: number
  readonly #min: number
  readonly #max: number
  readonly #oneIn: number

  /**
   * @param keep how many member buffers to keep for reuse (those in flight at once).
   * @param sizes the rule's numbers; only tests pass others (small trees, many members).
   */
  constructor(keep = 8, sizes: MemberCutSizes = MEMBER_CUT) {
    const { min, max, markOneIn } = sizes
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || !Number.isSafeInteger(markOneIn) || min < 1 || max < min || max > MEMBER_MAX || markOneIn < 1) {
      throw new TypeError(`member cut sizes must satisfy 1 <= min <= max <= ${MEMBER_MAX}, markOneIn >= 1: ${JSON.stringify(sizes)}`)
    }
    this.#keep = keep
    this.#min = min
    this.#max = max
    this.#oneIn = markOneIn
  }

  /** Called with the tar offset where `entry`'s records begin. */
  entryStart(pos: number, entry: LayerEntry): void {
    if (entry.type === 'file' && entry.size >= this.#max && this.#lenAt(pos) > 0) this.#cut(pos)
  }

  /** Called with the tar offset right after `entry`'s records (its padding included). */
  entryEnd(pos: number, entry: LayerEntry): void {
    if (this.#lenAt(pos) >= this.#min && isMark(entry.path, this.#oneIn)) this.#cut(pos)
  }

  /**
   * Called with where a file's content lies in the tar, before its bytes are fed. Returns true when
   * the content will lie wholly in one member and `where` is given: its check against `sha256` is
   * then the member writer's (the member's {@link RawMember.checks}), which skips it for a member
   * copied from the previous blob (members.ts).
   */
  noteData(start: number, size: number, sha256?: string, where?: FileWhere): boolean {
    // Cuts before `start` are all decided (entryStart ran); the next one an entry decides falls
    // after this content, so only a MEMBER_MAX cut can split it.
    const whole = sha256 !== undefined && where !== undefined && this.#lenAt(start) + size <= this.#max
    this.#data.push([start, start + size, sha256, whole ? where : undefined])
    return whole
  }

  /** Takes the next bytes of the tar; yields every member they complete. `chunk` is copied, not kept. */
  *feed(chunk: Buffer): Generator<RawMember> {
    let pos = 0
    while (pos < chunk.length) {
      const end = this.#boundary()
      const buf = (this.#buf ??= this.#free.pop() ?? Buffer.allocUnsafe(MEMBER_MAX))
      const n = Math.min(chunk.length - pos, end - (this.#start + this.#len))
      chunk.copy(buf, this.#len, pos, pos + n)
      this.#len += n
      pos += n
      if (this.#start + this.#len === end) yield this.#close()
    }
  }

  /** The last member (the tar's end blocks always make one unless the stream ended on a cut). */
  finish(): RawMember | undefined {
    return this.#len > 0 ? this.#close() : undefined
  }

  /** Gives a member buffer back once nothing reads it any more. */
  release(member: Buffer): void {
    if (member.buffer.byteLength === MEMBER_MAX && member.byteOffset === 0 && this.#free.length < this.#keep) {
      this.#free.push(Buffer.from(member.buffer, 0, MEMBER_MAX))
    }
  }

  #lenAt(pos: number): number {
    return (pos - this.#natural) % this.#max
  }

  #cut(pos: number): void {
    this.#natural = pos
    this.#cuts.push(pos)
  }

  #boundary(): number {
    const max = this.#start + this.#max
    const c = this.#cuts[0]
    return c !== undefined && c < max ? c : max
  }

  #close(): RawMember {
    const start = this.#start
    const end = start + this.#len
    if (this.#cuts[0] === end) this.#cuts.shift()
    const data: DataRange[] = []
    const checks: PendingCheck[] = []
    for (const [a, b, sha, where] of this.#data) {
      if (a >= end) break
      if (b <= start) continue
      const whole = a >= start && b <= end
      // noteData promised this content one member: a split one would go unchecked.
      if (where && !whole) throw new Error(`member cut inside ${where.path}, whose check was left to its member`)
      data.push(whole && sha !== undefined ? [a - start, b - start, sha] : [Math.max(a, start) - start, Math.min(b, end) - start])
      if (where) checks.push({ start: a - start, end: b - start, sha256: sha!, where })
    }
    while (this.#data.length > 0 && this.#data[0]![1] <= end) this.#data.shift()
    const bytes = this.#buf!.subarray(0, this.#len)
    this.#buf = undefined
    this.#start = end
    this.#len = 0
    return checks.length > 0 ? { bytes, data, checks } : { bytes, data }
  }
}
