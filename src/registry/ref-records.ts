import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { dirname } from 'node:path'
import { isDigest, type Digest } from '../oci/media-types.js'
import { writeFileAtomic } from '../store/atomic-write.js'
import type { BlobStore } from '../store/blob-store.js'
import { StoreLayout } from '../store/layout.js'

/** What a tag resolved to the last time it was pulled into this store. */
export interface RefRecord {
  readonly ref: string
  readonly digest: Digest
  readonly mediaType: string
}

function recordPath(blobs: BlobStore, ref: string): string {
  return new StoreLayout(blobs.root).registryRef(createHash('sha256').update(ref).digest('hex'))
}

/** Remembers `ref` → `digest` so a later pull with no registry in reach can use what is stored (as `docker pull` ahead of a build). */
export async function saveRefRecord(blobs: BlobStore, rec: RefRecord): Promise<void> {
  const path = recordPath(blobs, rec.ref)
  await fsp.mkdir(dirname(path), { recursive: true })
  await writeFileAtomic(path, JSON.stringify(rec), { tmpDir: blobs.tmpDir })
}

/** The record for `ref` when its manifest is still in the store; anything else reads as none. */
export async function loadRefRecord(blobs: BlobStore, ref: string): Promise<RefRecord | undefined> {
  try {
    const rec = JSON.parse(await fsp.readFile(recordPath(blobs, ref), 'utf8')) as Partial<RefRecord>
    if (rec.ref !== ref || !isDigest(rec.digest) || typeof rec.mediaType !== 'string') return undefined
    return (await blobs.has(rec.digest)) ? (rec as RefRecord) : undefined
  } catch {
    return undefined
  }
}
