/**
 * Blobs the store knows but does not hold: a layer an imported build cache answered for is recorded
 * here with where its bytes live (the cache's registry repository, or its directory), and fetched
 * only when something reads it (a snapshot unpack, an archive, an upload). One small JSON file per
 * digest, written atomically, so an image named in the store stays usable across processes while
 * its layers are still remote.
 *
 * The store cannot reach a registry itself (registry/ sits above it): a build installs a fetcher
 * per source type ({@link RemoteBlobs.use}); without one, a remote blob is reported missing.
 */
import { promises as fsp } from 'node:fs'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { isDigest, type Digest } from '../oci/media-types.js'
import { writeFileAtomic } from './atomic-write.js'
import type { StoreLayout } from './layout.js'

/** Where a remote blob's bytes are. `ref` is what errors name it by (`type=registry,ref=…`). */
export type RemoteSource =
  /** A repository on a registry; credentials are looked up for `registry` only. */
  | { readonly type: 'registry'; readonly registry: string; readonly repository: string; readonly ref: string }
  /** An OCI layout directory (`blobs/sha256/<hex>` under `dir`). */
  | { readonly type: 'local'; readonly dir: string; readonly ref: string }

export interface RemoteRecord {
  readonly digest: Digest
  readonly size: number
  readonly mediaType: string
  readonly source: RemoteSource
}

/**
 * Brings one remote blob into the store, verified against its digest while it streams; a mismatch
 * rejects (BLOB_CORRUPT or DIGEST_MISMATCH) with nothing stored.
 */
export type RemoteFetcher = (record: RemoteRecord, signal?: AbortSignal) => Promise<void>

/** A record is a few hundred bytes; anything larger is not one of ours. */
const MAX_RECORD_BYTES = 64 << 10

export class RemoteBlobs {
  readonly #layout: StoreLayout
  #fetchers: Partial<Record<RemoteSource['type'], RemoteFetcher>> = {}

  constructor(layout: StoreLayout) {
    this.#layout = layout
  }

  /** Installs how each source type is fetched (a build's registry client and settings). */
  use(fetchers: Partial<Record<RemoteSource['type'], RemoteFetcher>>): void {
    this.#fetchers = { ...this.#fetchers, ...fetchers }
  }

  fetcherFor(type: RemoteSource['type']): RemoteFetcher | undefined {
    return this.#fetchers[type]
  }

  async record(rec: RemoteRecord): Promise<void> {
    await fsp.mkdir(this.#layout.dir('remote'), { recursive: true })
    // Not fsynced: a lost record only means the layer is rebuilt (its cache entry then misses).
    await writeFileAtomic(this.#layout.remoteBlob(rec.digest), JSON.stringify(rec))
  }

  /** The record of `digest`, or undefined (none, or not a whole record of ours). */
  async get(digest: Digest): Promise<RemoteRecord | undefined> {
    let text: string
    try {
      const path = this.#layout.remoteBlob(digest)
      const st = await fsp.stat(path)
      if (st.size > MAX_RECORD_BYTES) return undefined
      text = await fsp.readFile(path, 'utf8')
    } catch {
      return undefined
    }
    return parseRecord(text, digest)
  }

  async remove(digest: Digest): Promise<void> {
    await fsp.rm(this.#layout.remoteBlob(digest), { force: true })
  }
}

export function parseRecord(text: string, digest: Digest): RemoteRecord | undefined {
  let r: Partial<RemoteRecord> & { source?: Partial<Record<string, unknown>> }
  try {
    r = JSON.parse(text) as typeof r
  } catch {
    return undefined
  }
  const s = r?.source
  if (typeof r !== 'object' || r === null || r.digest !== digest || !isDigest(r.digest) || typeof r.size !== 'number' || typeof r.mediaType !== 'string' || typeof s !== 'object' || s === null || typeof s.ref !== 'string') return undefined
  if (s.type === 'registry' && typeof s.registry === 'string' && typeof s.repository === 'string') return r as RemoteRecord
  if (s.type === 'local' && typeof s.dir === 'string') return r as RemoteRecord
  return undefined
}

/** The error a fetch that found other bytes than the digest gives: the digest and the cache named. */
export function remoteCorrupt(rec: RemoteRecord, cause: unknown): ImagesmithError {
  return new ImagesmithError(
    ErrorCodes.BLOB_CORRUPT,
    `layer ${rec.digest} from cache ${rec.source.ref} does not match its digest; nothing was stored (import caches only from refs you trust, or export the cache again)`,
    { digest: rec.digest, source: rec.source.ref },
    { cause },
  )
}
