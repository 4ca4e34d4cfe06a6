/**
 * Parallel multi-member gzip. The input is cut at fixed uncompressed offsets (every `memberSize`
 * bytes) and each piece becomes one complete gzip member, compressed by zlib on the libuv
 * threadpool, so several cores work at once. Members are emitted in input order.
 *
 * A concatenation of gzip members is one valid gzip file (RFC 1952 §2.2); `gzip -d`, Go's
 * compress/gzip (docker, containerd) and Node's gunzip all read it as a whole. Because the split
 * points depend only on the byte offsets, the same input and level always give the same bytes.
 */
import { gzip, type ZlibOptions } from 'node:zlib'
import { abortError, throwIfAborted } from '../errors.js'

export interface ParallelGzipOptions {
  /** zlib level, 0–9. @default 6 */
  readonly level?: number
  /**
   * Uncompressed bytes per gzip member. Part of the output's identity: change it and the bytes change.
   * @default 1048576
   */
  readonly memberSize?: number
  /**
   * Members compressed at once (bounds memory to roughly 2 × concurrency × memberSize).
   * @default 4
   */
  readonly concurrency?: number
  readonly signal?: AbortSignal
  /**
   * Called with a source chunk once zlib no longer reads it (only for chunks of exactly
   * `memberSize` bytes, which are compressed in place), so the producer can reuse the buffer.
   */
  readonly onInputDone?: (chunk: Buffer) => void
}

const DEFAULTS = Object.freeze({ level: 6, memberSize: 1 << 20, concurrency: 4 })

/** OS byte written into every member header: 3 = Unix, whatever platform zlib was built for. */
const GZIP_OS_UNIX = 3

/**
 * Compresses `source` into gzip members, yielding each member (a complete gzip stream) in order.
 * Pulls from `source` only while fewer than `concurrency` members are in flight.
 */
export async function* gzipMembers(
  source: Iterable<Buffer> | AsyncIterable<Buffer>,
  opts: ParallelGzipOptions = {},
): AsyncGenerator<Buffer> {
  const level = opts.level ?? DEFAULTS.level
  const memberSize = opts.memberSize ?? DEFAULTS.memberSize
  const concurrency = opts.concurrency ?? DEFAULTS.concurrency
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new TypeError(`gzip level must be an integer 0–9, got ${level}`)
  if (!Number.isInteger(memberSize) || memberSize < 1) throw new TypeError(`memberSize must be a positive integer, got ${memberSize}`)
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`concurrency must be a positive integer, got ${concurrency}`)
  const signal = opts.signal
  // One output buffer big enough for a whole member, so zlib finishes it in a single threadpool job
  // instead of returning to the main thread every 16 KiB.
  const zopts: ZlibOptions = { level, chunkSize: memberSize + (memberSize >> 10) + 1024 }

  const inflight: Promise<Buffer>[] = []
  let pending: Buffer[] = []
  let pendingLen = 0
  let submitted = 0
  const onInputDone = opts.onInputDone
  const submit = (buf: Buffer, owned: boolean): void => {
    const p = compressMember(buf, zopts, owned ? onInputDone : undefined)
    p.catch(() => {}) // observed when awaited; keeps an abandoned member from being "unhandled"
    inflight.push(p)
    submitted++
  }

  for await (const chunk of source) {
    throwIfAborted(signal)
    if (pendingLen === 0 && chunk.length === memberSize) {
      submit(chunk, true) // the tar writer's chunks already have member size: no copy
    } else {
      let rest: Buffer = chunk
      while (rest.length > 0) {
        const take = Math.min(rest.length, memberSize - pendingLen)
        pending.push(rest.subarray(0, take))
        pendingLen += take
        rest = rest.subarray(take)
        if (pendingLen === memberSize) {
          submit(pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen), false)
          pending = []
          pendingLen = 0
        }
      }
    }
    while (inflight.length >= concurrency) yield await inflight.shift()!
  }
  if (pendingLen > 0 || submitted === 0) submit(Buffer.concat(pending, pendingLen), false)
  while (inflight.length > 0) {
    if (signal?.aborted) throw abortError(signal)
    yield await inflight.shift()!
  }
}

/** One complete gzip member of `input`, on the threadpool; `done` gets `input` back once zlib no longer reads it. */
export function compressMember(input: Buffer, zopts: ZlibOptions, done: ((chunk: Buffer) => void) | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gzip(input, zopts, (err, out) => {
      done?.(input)
      if (err) return reject(err)
      resolve(fixHeader(out))
    })
  })
}

/**
 * zlib writes a 10-byte header with FLG 0 (no name, comment or header CRC) and MTIME 0; pin
 * MTIME and OS explicitly so the bytes never depend on the zlib build. XFL follows the level.
 */
function fixHeader(member: Buffer): Buffer {
  if (member.length < 18 || member[0] !== 0x1f || member[1] !== 0x8b || member[2] !== 8 || member[3] !== 0) {
    throw new Error('zlib produced an unexpected gzip header')
  }
  member.fill(0, 4, 8)
  member[9] = GZIP_OS_UNIX
  return member
}
