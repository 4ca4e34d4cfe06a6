/**
 * The member index of a gzip layer blob: for each gzip member, in blob order, the size and sha256 of
 * its uncompressed bytes and of its compressed bytes. A rebuild of the same step copies a member out
 * of the previous blob when its uncompressed bytes hash the same (layer/members.ts).
 *
 * Kept at `<store>/layer-members/<blob hex>.json`, written atomically after the blob is committed.
 * Nothing here is trusted blindly: the file carries a sha256 of its own body (a torn, truncated or
 * edited index reads as none), names its blob and the zlib that compressed it (another zlib may
 * compress the same bytes differently, and a rebuild must give the bytes a cold build gives), and
 * every member is checked against its recorded size and CRC32 when it is copied.
 */
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from './atomic-write.js'

/** One gzip member. */
export interface MemberRecord {
  /**
   * Uncompressed bytes (the tar range it holds): their size, and the sha256 (hex) of them followed by
   * the rule that picks which ranges of them the member stores rather than deflates
   * (layer/member-deflate.ts), so the two together decide the compressed bytes. What a rebuild looks
   * members up by.
   */
  readonly usize: number
  readonly usha: string
  /**
   * Compressed bytes (the member as it sits in the blob): size and CRC32, to tell a damaged blob
   * (a CRC32 is 4× cheaper than a sha256 here, and the blob is ours: no one crafts a collision).
   */
  readonly csize: number
  readonly ccrc: number
}

export interface MemberIndex {
  /** The blob these members make up, in order. */
  readonly digest: string
  /** gzip level and `process.versions.zlib`: members are only reused under the same two. */
  readonly level: number
  readonly zlib: string
  readonly members: readonly MemberRecord[]
}

const VERSION = 2
/** Past this many members the index is not kept (a 64 GiB layer); bounds what a read parses. */
const MAX_MEMBERS = 1 << 16
const HEX64 = /^[0-9a-f]{64}$/

const hex = (digest: string): string => digest.replace(/^sha256:/, '')

function indexPath(dir: string, digest: string): string {
  return join(dir, `${hex(digest)}.json`)
}

function bodyOf(index: MemberIndex): string {
  return JSON.stringify({ v: VERSION, digest: index.digest, level: index.level, zlib: index.zlib, members: index.members.map((m) => [m.usize, m.usha, m.csize, m.ccrc]) })
}

/** Records `index` for its blob. Best effort: a layer without an index is only rebuilt in full. */
export async function writeMemberIndex(dir: string, index: MemberIndex): Promise<void> {
  if (index.members.length > MAX_MEMBERS) return
  const body = bodyOf(index)
  const check = createHash('sha256').update(body).digest('hex')
  try {
    await fsp.mkdir(dir, { recursive: true })
    await writeFileAtomic(indexPath(dir, index.digest), `${check}\n${body}`)
  } catch {
    // The layer is made and committed; only a later rebuild's shortcut is lost.
  }
}

/** The index of blob `digest`, or undefined when there is none or it is not whole and consistent. */
export async function readMemberIndex(dir: string, digest: string): Promise<MemberIndex | undefined> {
  let text: string
  try {
    text = await fsp.readFile(indexPath(dir, digest), 'utf8')
  } catch {
    return undefined
  }
  const nl = text.indexOf('\n')
  if (nl !== 64) return undefined
  const body = text.slice(nl + 1)
  if (createHash('sha256').update(body).digest('hex') !== text.slice(0, nl)) return undefined
  try {
    const doc = JSON.parse(body) as { v?: unknown; digest?: unknown; level?: unknown; zlib?: unknown; members?: unknown }
    if (doc.v !== VERSION || doc.digest !== digest || typeof doc.level !== 'number' || typeof doc.zlib !== 'string') return undefined
    if (!Array.isArray(doc.members) || doc.members.length > MAX_MEMBERS) return undefined
    const members: MemberRecord[] = []
    for (const m of doc.members as unknown[]) {
      if (!Array.isArray(m) || m.length !== 4) return undefined
      const [usize, usha, csize, ccrc] = m as unknown[]
      if (!isSize(usize) || !isSize(csize) || typeof usha !== 'string' || !HEX64.test(usha) || !isCrc(ccrc)) return undefined
      members.push({ usize, usha, csize, ccrc })
    }
    return { digest, level: doc.level, zlib: doc.zlib, members }
  } catch {
    return undefined
  }
}

function isCrc(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 2 ** 32
}

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0
}
