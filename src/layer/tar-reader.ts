/**
 * Streaming tar reader that keeps names as bytes: ustar (name + prefix), PAX extended headers
 * (`path`, `linkpath`, `size`, `mtime`, `uid`, `gid`) and GNU long names and link targets (`L`,
 * `K`). Names and link targets come out as the exact bytes of the archive, whatever their
 * encoding (PAX records are bytes too: Go's archive/tar writes names into them as they are), so a
 * reader turns them into entry paths with `nameFromBytes` and the tar writer writes them back
 * unchanged. node-tar decodes them as UTF-8 with U+FFFD for bad bytes, which loses them.
 *
 * Follows Go's archive/tar (what BuildKit unpacks ADD archives with): a GNU long name wins over a
 * PAX path, PAX global headers are not merged into later entries (moby ignores them), links,
 * devices, directories and FIFOs have no body whatever their size field says. Stranger input is
 * bounded: an extended header or long name is at most {@link MAX_META_SIZE} bytes and holds at
 * most {@link MAX_PAX_RECORDS} records; anything malformed is a {@link TarHeaderError}.
 */
import { isTarHeader } from '../util/sniff.js'

/** Largest PAX extended header or GNU long name/link body read (Go's maxSpecialFileSize). */
export const MAX_META_SIZE = 1 << 20
/** Most records one PAX extended header may hold. */
export const MAX_PAX_RECORDS = 10_000

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo'

export interface TarHeader {
  /** undefined: a kind of entry no image layer holds (GNU volume label, sparse file, …). */
  readonly type: TarEntryType | undefined
  /** The name, PAX `path` or GNU long name, with a ustar prefix joined on: raw bytes. */
  readonly name: Buffer
  /** The link target, PAX `linkpath` or GNU long link: raw bytes (empty if none). */
  readonly linkname: Buffer
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Bytes of body (0 for every type but 'file' and unknown ones). */
  readonly size: number
  /** Seconds since the epoch (a PAX fraction rounded down). */
  readonly mtime: number
  readonly devmajor: number
  readonly devminor: number
  /** Byte offset of the entry's header block in the (uncompressed) archive. */
  readonly offset: number
}

export interface TarEntry {
  readonly header: TarHeader
  /**
   * The entry's body, in pieces as they arrive. Read it before asking for the next entry (what
   * is left unread is skipped then); at most once.
   */
  body(): AsyncGenerator<Buffer>
}

/** The archive is malformed at `offset` (of a header block, in the uncompressed stream). */
export class TarHeaderError extends Error {
  override name = 'TarHeaderError'
  constructor(message: string, readonly offset: number) {
    super(message)
  }
}

const BLOCK = 512
const TYPES: Readonly<Record<number, TarEntryType>> = Object.freeze({
  0x00: 'file', // V7 regular file
  0x30: 'file', // '0'
  0x37: 'file', // '7' contiguous file
  0x31: 'hardlink',
  0x32: 'symlink',
  0x33: 'char',
  0x34: 'block',
  0x35: 'dir',
  0x36: 'fifo',
})
const PAX_LOCAL = 0x78 // 'x'
const PAX_GLOBAL = 0x67 // 'g'
const GNU_LONG_NAME = 0x4c // 'L'
const GNU_LONG_LINK = 0x4b // 'K'
const GNU_SPARSE = 0x53 // 'S'
/** The PAX keys a layer entry takes; every other record is counted and dropped. */
const PAX_KEYS = new Set(['path', 'linkpath', 'size', 'mtime', 'uid', 'gid'])
const EMPTY = Buffer.alloc(0)

/**
 * The entries of the tar stream `input`, in order. After the end-of-archive blocks the rest of
 * the input is read and dropped, so a decompressor feeding it runs to its end. Stopping the
 * iteration early leaves `input` unread: the caller destroys it.
 */
export async function* readTarEntries(input: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const src = new ByteReader(input)
  let pax: Map<string, Buffer> | undefined
  let longName: Buffer | undefined
  let longLink: Buffer | undefined
  for (;;) {
    const at = src.offset
    const block = await src.read(BLOCK)
    // Go's archive/tar takes an archive that ends at a header boundary without end blocks.
    if (block.length === 0) break
    if (block.length < BLOCK) throw new TarHeaderError('the archive ends inside a header', at)
    if (isZero(block)) break
    if (!isTarHeader(block)) throw new TarHeaderError('bad tar header (checksum mismatch)', at)
    const flag = block[156]!
    const size = numeric(block, 124, 12, 'size', at)
    if (size < 0) throw new TarHeaderError('negative size', at)
    if (flag === PAX_LOCAL || flag === GNU_LONG_NAME || flag === GNU_LONG_LINK) {
      if (size > MAX_META_SIZE) throw new TarHeaderError(`extended header of ${size} bytes (at most ${MAX_META_SIZE})`, at)
      const data = await src.read(size)
      if (data.length < size) throw new TarHeaderError('the archive ends inside an extended header', at)
      await src.skip(padding(size), at)
      if (flag === PAX_LOCAL) pax = parsePax(data, at)
      else if (flag === GNU_LONG_NAME) longName = cString(data, 0, size)
      else longLink = cString(data, 0, size)
      continue
    }
    if (flag === PAX_GLOBAL) {
      await src.skip(size + padding(size), at)
      continue
    }
    const h = entryHeader(block, flag, size, at, pax, longName, longLink)
    pax = longName = longLink = undefined
    if (flag === GNU_SPARSE && block[482] !== 0) await skipSparseExtensions(src, at)
    const state = { left: h.size, taken: false }
    yield { header: h, body: () => body(src, state, at) }
    state.taken = true
    await src.skip(state.left + padding(h.size), at)
  }
  await src.drain()
}

async function* body(src: ByteReader, state: { left: number; taken: boolean }, at: number): AsyncGenerator<Buffer> {
  if (state.taken) throw new TypeError('a tar entry body is read once, before the next entry')
  state.taken = true
  while (state.left > 0) {
    const piece = await src.next(state.left)
    if (piece === undefined) throw new TarHeaderError('the archive ends inside an entry body', at)
    state.left -= piece.length
    yield piece
  }
}

function entryHeader(
  block: Buffer, flag: number, headerSize: number, at: number,
  pax: Map<string, Buffer> | undefined, longName: Buffer | undefined, longLink: Buffer | undefined,
): TarHeader {
  const posix = block.toString('latin1', 257, 263) === 'ustar\0'
  const ustarLike = block.toString('latin1', 257, 262) === 'ustar' // POSIX ustar/PAX and GNU
  let name = cString(block, 0, 100)
  if (posix) {
    // star puts atime/ctime after a 131-byte prefix and marks it with a "tar\0" trailer.
    const prefix = cString(block, 345, block.toString('latin1', 508, 512) === 'tar\0' ? 131 : 155)
    if (prefix.length > 0) name = Buffer.concat([prefix, SLASH, name])
  }
  name = longName ?? pax?.get('path') ?? name
  const linkname = longLink ?? pax?.get('linkpath') ?? cString(block, 157, 100)
  let type: TarEntryType | undefined = TYPES[flag]
  // Old tars mark a directory as a regular file whose name ends in '/'.
  if ((flag === 0x00 || flag === 0x30) && name[name.length - 1] === 0x2f) type = 'dir'
  const size = pax?.has('size') ? paxInt(pax, 'size', at) : headerSize
  const isDev = type === 'char' || type === 'block'
  return {
    type, name, linkname,
    mode: numeric(block, 100, 8, 'mode', at),
    uid: pax?.has('uid') ? paxInt(pax, 'uid', at) : numeric(block, 108, 8, 'uid', at),
    gid: pax?.has('gid') ? paxInt(pax, 'gid', at) : numeric(block, 116, 8, 'gid', at),
    // Links, devices, directories and FIFOs never have a body (Go's isHeaderOnlyType).
    size: type === undefined || type === 'file' ? size : 0,
    mtime: pax?.has('mtime') ? paxTime(pax.get('mtime')!, at) : numeric(block, 136, 12, 'mtime', at),
    devmajor: isDev && ustarLike ? numeric(block, 329, 8, 'devmajor', at) : 0,
    devminor: isDev && ustarLike ? numeric(block, 337, 8, 'devminor', at) : 0,
    offset: at,
  }
}
const SLASH = Buffer.from('/')

/** Old GNU sparse files continue their map in extension blocks before the body. */
async function skipSparseExtensions(src: ByteReader, at: number): Promise<void> {
  for (;;) {
    const ext = await src.read(BLOCK)
    if (ext.length < BLOCK) throw new TarHeaderError('the archive ends inside a sparse map', at)
    if (ext[504] === 0) return
  }
}

/** PAX records, `<len> <key>=<value>\n`, keeping values as bytes. */
function parsePax(data: Buffer, at: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  let pos = 0
  let count = 0
  while (pos < data.length) {
    if (++count > MAX_PAX_RECORDS) throw new TarHeaderError(`extended header with more than ${MAX_PAX_RECORDS} records`, at)
    let sp = pos
    // A record fits the header (≤ 1 MiB): its length has at most 7 digits.
    while (sp < data.length && sp - pos < 8 && data[sp]! >= 0x30 && data[sp]! <= 0x39) sp++
    const len = sp > pos && data[sp] === 0x20 ? Number(data.toString('latin1', pos, sp)) : NaN
    if (!(len > sp - pos + 1) || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new TarHeaderError(`malformed PAX record at byte ${pos} of an extended header`, at)
    }
    const rec = data.subarray(sp + 1, pos + len - 1)
    const eq = rec.indexOf(0x3d)
    if (eq <= 0) throw new TarHeaderError(`malformed PAX record at byte ${pos} of an extended header`, at)
    const key = rec.toString('latin1', 0, eq)
    const value = rec.subarray(eq + 1)
    if (PAX_KEYS.has(key)) {
      if (value.includes(0)) throw new TarHeaderError(`PAX record ${key} holds a NUL byte`, at)
      out.set(key, value)
    }
    pos += len
  }
  return out
}

function paxInt(pax: Map<string, Buffer>, key: string, at: number): number {
  const s = pax.get(key)!.toString('latin1')
  const n = /^[0-9]{1,16}$/.test(s) ? Number(s) : NaN
  if (!Number.isSafeInteger(n)) throw new TarHeaderError(`PAX record ${key} is not a valid number: ${JSON.stringify(s.slice(0, 40))}`, at)
  return n
}

/** A PAX time, `[-]seconds[.fraction]`, in whole seconds rounded down. */
function paxTime(value: Buffer, at: number): number {
  const s = value.toString('latin1')
  const m = /^(-?)([0-9]{1,16})(?:\.([0-9]*))?$/.exec(s)
  if (!m) throw new TarHeaderError(`PAX record mtime is not a valid time: ${JSON.stringify(s.slice(0, 40))}`, at)
  const secs = Number(m[2])
  if (m[1] !== '-') return secs
  return -secs - (m[3] !== undefined && /[1-9]/.test(m[3]) ? 1 : 0)
}

/** A header number: octal (space/NUL padded) or GNU base-256 (high bit set, two's complement). */
function numeric(b: Buffer, off: number, len: number, field: string, at: number): number {
  if (b[off]! & 0x80) {
    let v = BigInt(b[off]! & 0x7f)
    for (let i = off + 1; i < off + len; i++) v = (v << 8n) | BigInt(b[i]!)
    if (b[off]! & 0x40) v -= 1n << BigInt(len * 8 - 1) // sign bit of the 7 value bits of the first byte
    const n = Number(v)
    if (!Number.isSafeInteger(n)) throw new TarHeaderError(`header field ${field} is out of range`, at)
    return n
  }
  // Go's parseOctal: fields may be padded (even led) with spaces or NULs.
  let start = off
  let end = off + len
  while (start < end && (b[start] === 0x20 || b[start] === 0)) start++
  while (end > start && (b[end - 1] === 0x20 || b[end - 1] === 0)) end--
  if (start === end) return 0
  const s = b.toString('latin1', start, end)
  if (!/^[0-7]+$/.test(s)) throw new TarHeaderError(`header field ${field} is not an octal number: ${JSON.stringify(s)}`, at)
  return parseInt(s, 8)
}

/** The bytes of a NUL-terminated field (all of it when there is no NUL). */
function cString(b: Buffer, off: number, len: number): Buffer {
  const end = Math.min(off + len, b.length)
  const nul = b.indexOf(0, off)
  return b.subarray(off, nul < 0 || nul > end ? end : nul)
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

/** Pull-based reads over the chunks of a stream, counting the bytes taken. */
class ByteReader {
  readonly #it: AsyncIterator<Buffer>
  #cur: Buffer = EMPTY
  #pos = 0
  #done = false
  /** Bytes handed out or skipped so far. */
  offset = 0

  constructor(input: AsyncIterable<Buffer>) {
    this.#it = input[Symbol.asyncIterator]()
  }

  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#cur.length) {
      if (this.#done) return false
      const r = await this.#it.next()
      if (r.done) {
        this.#done = true
        return false
      }
      this.#cur = r.value
      this.#pos = 0
    }
    return true
  }

  /** Up to `max` bytes: what the current chunk holds (a view into it), or undefined at the end. */
  async next(max: number): Promise<Buffer | undefined> {
    if (!(await this.#fill())) return undefined
    const n = Math.min(max, this.#cur.length - this.#pos)
    const out = this.#cur.subarray(this.#pos, this.#pos + n)
    this.#pos += n
    this.offset += n
    return out
  }

  /** Exactly `n` bytes in a buffer of their own, or fewer at the end of the input. */
  async read(n: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(n)
    let got = 0
    while (got < n) {
      const piece = await this.next(n - got)
      if (piece === undefined) break
      piece.copy(out, got)
      got += piece.length
    }
    return got === n ? out : out.subarray(0, got)
  }

  async skip(n: number, at: number): Promise<void> {
    while (n > 0) {
      const piece = await this.next(n)
      if (piece === undefined) throw new TarHeaderError('the archive ends inside an entry', at)
      n -= piece.length
    }
  }

  async drain(): Promise<void> {
    while ((await this.next(Infinity)) !== undefined) { /* dropped */ }
  }
}
