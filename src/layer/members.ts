/**
 * Gzip members of a layer, compressed in parallel, or copied from the previous blob of the same
 * step when their uncompressed bytes are the same: a one-file change re-gzips one member, not the
 * layer. The members are cut where member-cut.ts says (by the entries alone), and compressed with
 * the same zlib at the same level, so a copied member is the byte-for-byte member a cold build makes.
 *
 * A copied member is trusted only once its bytes, read from the previous blob, have the size and
 * CRC32 its index records (store/member-index.ts), and its gzip trailer the CRC32 of the bytes it
 * stands for; otherwise it is compressed like any other.
 */
import { createHash } from 'node:crypto'
import { closeSync, fstatSync, openSync, read } from 'node:fs'
import { crc32 } from 'node:zlib'
import { abortError, throwIfAborted } from '../errors.js'
import { compressMember } from './gzip-member.js'
import { readMemberIndex, type MemberIndex, type MemberRecord } from '../store/member-index.js'
import { MEMBER_MAX, type DataRange, type PendingCheck, type RawMember } from './member-cut.js'
import { contentMismatch } from './tar-writer.js'
import { deflateWithStored, STORE_RULE, storedRanges } from './member-deflate.js'

/** The members of a previous blob, by what they hold uncompressed. */
export class PreviousMembers {
  readonly #fd: number
  readonly #size: number
  readonly #byContent = new Map<string, { offset: number; record: MemberRecord }>()
  #open = true

  private constructor(fd: number, size: number, index: MemberIndex) {
    this.#fd = fd
    this.#size = size
    let offset = 0
    for (const record of index.members) {
      const key = `${record.usize}:${record.usha}`
      if (!this.#byContent.has(key)) this.#byContent.set(key, { offset, record })
      offset += record.csize
    }
  }

  /**
   * Opens blob `blobPath` (`digest`) with its index from `dir`, when both are there and were made
   * at `level` by this zlib; undefined otherwise (the layer is then compressed in full).
   */
  static async open(dir: string, digest: string, blobPath: string, level: number): Promise<PreviousMembers | undefined> {
    const index = await readMemberIndex(dir, digest)
    if (!index || index.level !== level || index.zlib !== process.versions.zlib) return undefined
    let fd: number
    try {
      fd = openSync(blobPath, 'r')
    } catch {
      return undefined
    }
    const size = fstatSync(fd).size
    if (index.members.reduce((n, m) => n + m.csize, 0) !== size) {
      closeSync(fd)
      return undefined
    }
    return new PreviousMembers(fd, size, index)
  }

  /**
   * The compressed member of `member` (whose reuse key is `usha`), read and checked: its bytes have the
   * size and CRC32 the index records, and its trailer the CRC32 and size of `member`; else undefined.
   */
  async take(member: Buffer, usha: string): Promise<{ bytes: Buffer; record: MemberRecord } | undefined> {
    const hit = this.#byContent.get(`${member.length}:${usha}`)
    if (!this.#open || !hit || hit.offset + hit.record.csize > this.#size) return undefined
    const bytes = Buffer.allocUnsafe(hit.record.csize)
    let got = 0
    try {
      while (got < bytes.length) {
        const n = await readAt(this.#fd, bytes, got, hit.offset + got)
        if (n === 0) break
        got += n
      }
    } catch {
      return undefined
    }
    if (got !== bytes.length || !isWholeMember(bytes, member) || crc32(bytes) !== hit.record.ccrc) return undefined
    return { bytes, record: hit.record }
  }

  close(): void {
    if (this.#open) closeSync(this.#fd)
    this.#open = false
  }
}

export interface MemberOut {
  readonly bytes: Buffer
  readonly record: MemberRecord
  readonly reused: boolean
}

export interface CompressMembersOptions {
  readonly level: number
  /** Members compressed at once. @default 4 */
  readonly concurrency?: number
  readonly previous?: PreviousMembers
  readonly signal?: AbortSignal
  /** Called with a member once nothing reads it any more. */
  readonly release?: (member: Buffer) => void
}

/** Compresses (or copies) each uncompressed member of `source`, yielding them in order. */
export async function* compressMembers(
  source: Iterable<RawMember> | AsyncIterable<RawMember>,
  opts: CompressMembersOptions,
): AsyncGenerator<MemberOut> {
  const concurrency = opts.concurrency ?? 4
  const zopts = { level: opts.level, chunkSize: MEMBER_MAX + (MEMBER_MAX >> 10) + 1024 }
  const inflight: Promise<MemberOut>[] = []
  const previous = opts.previous
  const one = async ({ bytes: member, data, checks }: RawMember): Promise<MemberOut> => {
    const key = memberKey(member, data)
    const copied = previous ? await previous.take(member, key) : undefined
    if (copied) {
      // Its contents' checks are not needed: this member's bytes have the CRC32 of the previous
      // build's member, whose contents were checked against the same hashes (they are in its key).
      opts.release?.(member)
      return { ...copied, reused: true }
    }
    try {
      checkContents(member, checks)
    } catch (e) {
      opts.release?.(member)
      throw e
    }
    const stored = storedRanges({ bytes: member, data })
    let bytes: Buffer
    if (stored.length === 0) bytes = await compressMember(member, zopts, opts.release)
    else {
      try {
        bytes = await deflateWithStored(member, stored, opts.level)
      } finally {
        opts.release?.(member)
      }
    }
    return { bytes, record: { usize: member.length, usha: key, csize: bytes.length, ccrc: crc32(bytes) }, reused: false }
  }
  for await (const member of source) {
    throwIfAborted(opts.signal)
    const p = one(member)
    p.catch(() => {}) // observed when awaited; keeps an abandoned member from being "unhandled"
    inflight.push(p)
    // Bounds memory (members held whole, in and out) and the gzip jobs queued at once.
    while (inflight.length >= 2 * concurrency) yield await inflight.shift()!
  }
  while (inflight.length > 0) {
    if (opts.signal?.aborted) throw abortError(opts.signal)
    yield await inflight.shift()!
  }
}


/** The tar writer left these contents' checks to us (write-layer.ts): SOURCE_CHANGED on the first that differs. */
function checkContents(member: Buffer, checks: readonly PendingCheck[] | undefined): void {
  for (const c of checks ?? []) {
    const got = createHash('sha256').update(member.subarray(c.start, c.end)).digest('hex')
    if (got !== c.sha256) throw contentMismatch(c.where.path, c.sha256, got, c.where.source)
  }
}

function readAt(fd: number, buf: Buffer, off: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, off, buf.length - off, pos, (err, n) => (err ? reject(err) : resolve(n))))
}

/**
 * What decides a member's compressed bytes: its bytes, and the rule that picks which of them are
 * stored (STORE_RULE; the ranges follow from the bytes). A file content whose sha256 is checked
 * against its key's hash (DataRange) stands in the key by that hash, not by its bytes hashed once
 * more; the ranges' places and lengths go in too, so the key names the bytes exactly. Hex sha256.
 */
export function memberKey(bytes: Buffer, data: readonly DataRange[]): string {
  const h = createHash('sha256')
  let pos = 0
  let layout = ''
  for (const [a, b, sha] of data) {
    if (sha === undefined) continue
    if (a > pos) h.update(bytes.subarray(pos, a))
    layout += `${a}-${b}:${sha},`
    pos = b
  }
  if (pos < bytes.length) h.update(bytes.subarray(pos))
  return h.update(`\0${layout}\0${STORE_RULE}`).digest('hex')
}

/**
 * A gzip member of `data`: the header we write, and a trailer holding the CRC32 and size (mod 2^32)
 * of `data` itself, so a member is never copied for other bytes than it was made of, whatever an
 * index says.
 */
function isWholeMember(b: Buffer, data: Buffer): boolean {
  return b.length >= 18 && b[0] === 0x1f && b[1] === 0x8b && b[2] === 8 &&
    b.readUInt32LE(b.length - 4) === data.length % 2 ** 32 && b.readUInt32LE(b.length - 8) === crc32(data)
}
