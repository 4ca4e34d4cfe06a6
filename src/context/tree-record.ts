/**
 * A COPY's whole-tree shortcut: the digest of everything the context walk saw (every entry's path,
 * metadata and host file stamp) → the content key those files had. A rebuild whose walk sees the same
 * stamps takes the key from one small file instead of looking 10k files up in the stat cache and
 * hashing each line of the content key again (a third of a no-op COPY check on the 10k-file bench).
 *
 * It is exactly as safe as the per-file stat cache it summarises: a record is written only when every
 * file's own record was (no file changed within the racy window, content-key.ts), and a stamp holds
 * the inode, size, mtime and ctime, which no write leaves as they were. A step that misses the cache
 * anyway computes the key in full again before it writes a byte (MissDetail.prepare, ops/copy.ts).
 */
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { Digest } from '../oci/media-types.js'
import type { LayerEntry } from '../layer/entry.js'
import { writeFileAtomic } from '../store/atomic-write.js'

/**
 * The digest of the entries as the walk saw them. Only host files' bytes are left out: their stamps
 * stand in. Everything else the content key hashes is in it, inline bytes included. Undefined when a
 * host file carries no stamp from the walk: such a tree has no record.
 */
export function treeStamp(entries: readonly LayerEntry[]): string | undefined {
  const h = createHash('sha256')
  for (const e of entries) {
    let tail: string
    switch (e.type) {
      case 'file':
        if ('data' in e.source) tail = `${e.size}\0d${createHash('sha256').update(e.source.data).digest('hex')}`
        else if (e.source.stamp === undefined) return undefined
        else tail = `${e.size}\0h${e.source.stamp}\0${e.source.path}`
        break
      case 'symlink':
      case 'hardlink':
        tail = e.linkname
        break
      case 'char':
      case 'block':
        tail = `${e.devmajor},${e.devminor}`
        break
      default:
        tail = ''
    }
    h.update(`${e.path}\0${e.type}\0${e.mode}\0${e.uid}:${e.gid}\0${e.mtime}\0${tail}\n`)
  }
  return h.digest('hex')
}

const recordPath = (dir: string, stamp: string): string => join(dir, `tree-${stamp}.json`)

/** The content key recorded for `stamp`, if any (an unreadable or foreign record is none). */
export async function readTreeRecord(dir: string, stamp: string): Promise<Digest | undefined> {
  try {
    const doc = JSON.parse(await fsp.readFile(recordPath(dir, stamp), 'utf8')) as { content?: unknown }
    return typeof doc.content === 'string' && /^sha256:[0-9a-f]{64}$/.test(doc.content) ? (doc.content as Digest) : undefined
  } catch {
    return undefined
  }
}

/** Not fsynced: a lost record only means the next check looks every file up again. */
export async function writeTreeRecord(dir: string, stamp: string, content: Digest): Promise<void> {
  await fsp.mkdir(dir, { recursive: true })
  await writeFileAtomic(recordPath(dir, stamp), JSON.stringify({ content }))
}

export async function dropTreeRecord(dir: string, stamp: string): Promise<void> {
  await fsp.rm(recordPath(dir, stamp), { force: true })
}
