/**
 * One gzip member of a tar range, with file contents that do not compress (already-compressed
 * files, random bytes) stored instead of deflated. zlib spends as long failing to shrink such bytes
 * as it spends compressing text (41–56 MB/s per core, limits.md) and then stores them anyway;
 * storing them ourselves costs a copy. The rest of the range is deflated by zlib on the threadpool,
 * in raw deflate pieces each ended with a full flush (byte-aligned, no final bit), so the pieces and
 * our stored blocks concatenate into one valid deflate stream (RFC 1951 §3.2.4).
 *
 * Which contents are stored is decided by their bytes alone (a sample's byte entropy), so the same
 * member gives the same bytes in every build.
 */
import { constants, crc32, createDeflateRaw } from 'node:zlib'
import type { RawMember } from './member-cut.js'
import { GZIP_OS_UNIX } from './gzip-member.js'

/** File content shorter than this is always deflated (a stored piece only pays off on real bytes). */
export const STORE_MIN = 4096
/** Contents are judged in pieces of this size (the last one takes a short remainder in). */
const PIECE = 64 << 10
/** Bytes sampled at the start of each piece. */
const SAMPLE = 2048
/**
 * Order-0 entropy (bits per byte) of a sample at or above which its piece is stored. Random bytes
 * measure ~7.91 on 2 KiB (the estimate runs low on small samples); text 4–5; even base64 6;
 * deflate wins nothing worth its time above this.
 */
const STORE_ENTROPY = 7.8

/** c·log2(c) for every count a sample can hold; made on first use: a no-op build never samples, and it showed in a no-op build's profile at module load. */
let C_LOG_C: Float64Array | undefined
/** Four histograms filled in turn: one array's counter updates wait on each other (store to load). */
const counts = new Uint32Array(4 * 256)

function cLogC(): Float64Array {
  if (C_LOG_C) return C_LOG_C
  const t = new Float64Array(SAMPLE + 1)
  for (let c = 2; c <= SAMPLE; c++) t[c] = c * Math.log2(c)
  return (C_LOG_C = t)
}

function highEntropy(b: Buffer, start: number): boolean {
  const C_LOG_C = cLogC()
  counts.fill(0)
  const end = start + SAMPLE // SAMPLE is a multiple of 4
  for (let i = start; i < end; i += 4) {
    counts[b[i]!]!++
    counts[256 + b[i + 1]!]!++
    counts[512 + b[i + 2]!]!++
    counts[768 + b[i + 3]!]!++
  }
  let sum = 0
  for (let v = 0; v < 256; v++) sum += C_LOG_C[counts[v]! + counts[256 + v]! + counts[512 + v]! + counts[768 + v]!]!
  return Math.log2(SAMPLE) - sum / SAMPLE >= STORE_ENTROPY
}

/** The member ranges to store, [start, end), ascending and merged. */
export function storedRanges(member: RawMember): [number, number][] {
  const out: [number, number][] = []
  for (const [a, b] of member.data) {
    if (b - a < STORE_MIN) continue
    for (let p = a; p < b;) {
      let q = Math.min(p + PIECE, b)
      if (b - q < SAMPLE) q = b
      if (highEntropy(member.bytes, p)) {
        const last = out[out.length - 1]
        if (last && last[1] === p) last[1] = q
        else out.push([p, q])
      }
      p = q
    }
  }
  return out
}

/**
 * Names the rule {@link storedRanges} follows, for every member's reuse key: the ranges are a
 * function of the member's bytes and this rule alone, so the key names the compressed bytes without
 * computing them (a member copied from the previous blob never samples its entropy). Change it with
 * any change to what storedRanges picks or how a stored range is written: members keyed under the
 * old rule must not be copied into a layer the new rule would write otherwise.
 */
export const STORE_RULE = `entropy>=${STORE_ENTROPY} of ${SAMPLE} per ${PIECE}, files>=${STORE_MIN}, v1`

/** A final, empty stored block (BFINAL=1, BTYPE=00, LEN=0, NLEN=0xffff). */
const FINAL_EMPTY = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff])
const STORED_MAX = 0xffff

/** The 10-byte header zlib writes (MTIME 0, XFL by level as zlib sets it, OS Unix). */
function header(level: number): Buffer {
  const xfl = level === 9 ? 2 : level === 1 ? 4 : 0
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, GZIP_OS_UNIX])
}

/** Non-final stored blocks holding `data` (the stream is byte-aligned before each). */
function storedBlocks(data: Buffer): Buffer {
  const n = Math.ceil(data.length / STORED_MAX)
  const out = Buffer.allocUnsafe(data.length + 5 * n)
  let o = 0
  for (let p = 0; p < data.length; p += STORED_MAX) {
    const len = Math.min(STORED_MAX, data.length - p)
    out[o] = 0x00
    out.writeUInt16LE(len, o + 1)
    out.writeUInt16LE(~len & 0xffff, o + 3)
    data.copy(out, o + 5, p, p + len)
    o += 5 + len
  }
  return out
}

/** The empty stored block a full flush ends with (after the 3 block bits, aligned): LEN 0, NLEN 0xffff. */
const FLUSH_MARK = Buffer.from([0x00, 0x00, 0xff, 0xff])

/**
 * Deflates `pieces` as one raw stream, fully flushed after each (byte-aligned, dictionary reset,
 * no final bit), and returns each piece's output. One zlib stream per member: a fresh zlib state
 * per piece cost ~60 page faults each (its 256 KiB of tables), seconds of system time on 10k files.
 */
async function deflatePieces(pieces: readonly Buffer[], level: number): Promise<Buffer[]> {
  const z = createDeflateRaw({ level, chunkSize: 256 << 10 })
  let got: Buffer[] = []
  let failed: Error | undefined
  let wake: (() => void) | undefined
  z.on('data', (c: Buffer) => { got.push(c); wake?.() })
  z.on('error', (e: Error) => { failed = e; wake?.() })
  const out: Buffer[] = []
  try {
    for (const piece of pieces) {
      z.write(piece)
      await new Promise<void>((resolve) => z.flush(constants.Z_FULL_FLUSH, () => resolve()))
      // The flush's output has been pushed when its callback runs; should a 'data' event still be
      // on its way, wait for it: a full flush always ends on its empty stored block.
      while (!failed && !endsWithMark(got)) await new Promise<void>((resolve) => { wake = resolve })
      if (failed) throw failed
      out.push(Buffer.concat(got))
      got = []
    }
  } finally {
    z.close()
  }
  return out
}

function endsWithMark(chunks: readonly Buffer[]): boolean {
  const tail = Buffer.concat(chunks.slice(-2))
  return tail.length >= 4 && tail.subarray(tail.length - 4).equals(FLUSH_MARK)
}

/** The gzip member of `bytes` with `stored` ranges stored and the rest deflated at `level`. */
export async function deflateWithStored(bytes: Buffer, stored: readonly (readonly [number, number])[], level: number): Promise<Buffer> {
  const deflated: Buffer[] = []
  let pos = 0
  for (const [a, b] of stored) {
    if (a > pos) deflated.push(bytes.subarray(pos, a))
    pos = b
  }
  if (pos < bytes.length) deflated.push(bytes.subarray(pos))
  const outs = await deflatePieces(deflated, level)
  const parts: Buffer[] = [header(level)]
  let next = 0
  pos = 0
  for (const [a, b] of stored) {
    if (a > pos) parts.push(outs[next++]!)
    parts.push(storedBlocks(bytes.subarray(a, b)))
    pos = b
  }
  if (pos < bytes.length) parts.push(outs[next++]!)
  parts.push(FINAL_EMPTY)
  const trailer = Buffer.allocUnsafe(8)
  trailer.writeUInt32LE(crc32(bytes), 0)
  trailer.writeUInt32LE(bytes.length % 2 ** 32, 4)
  parts.push(trailer)
  return Buffer.concat(parts)
}
