import { ErrorCodes, isImagesmithError } from '../errors.js'
import { isDigest, type Digest } from '../oci/media-types.js'
import type { LayerRef } from '../oci/types.js'
import type { CacheKey } from '../solver/types.js'
import type { BlobStore } from '../store/blob-store.js'
import type { RemoteSource } from '../store/remote-blobs.js'
import type { CacheBackend, CacheRecord, StepHistory } from './backend.js'

/** An imported cache (a registry ref, a cache directory, an image's inline records): its records, and where its layers' blobs are. */
export interface CacheSource {
  /** What the cache is called in warnings: `type=registry,ref=…`. */
  readonly name: string
  readonly records: ReadonlyMap<Digest, LayerRef>
  /** Where a hit layer's blob is fetched from when something reads it (store/remote-blobs.ts). */
  readonly remote: RemoteSource
}

/**
 * The store's own cache with imported caches behind it (BuildKit's cache importers): a key the store
 * misses is looked up in each source in order. A hit fetches nothing: the layer is recorded in the
 * store as remote (where its blob is), and its blob is fetched, verified, only when something reads
 * it (a later step's snapshot, an output's bytes); a push to the cache's registry mounts or skips it
 * without reading it. The hit is recorded in the store's index; the next build finds it there once
 * the blob is local. Every key the build hit or made is kept for an export.
 */
export class SharingCacheBackend implements CacheBackend {
  readonly #inner: CacheBackend
  readonly #blobs: Pick<BlobStore, 'has' | 'remote'>
  readonly #sources: readonly CacheSource[]
  readonly #warn: (message: string) => void
  readonly history: StepHistory | undefined
  /** Every key this build hit or made, with its layer: what an export writes. */
  readonly used = new Map<Digest, LayerRef>()
  /** Keys answered by an imported cache (not the store's own). */
  readonly #importedKeys = new Set<Digest>()
  /** Layers a source sent other bytes for: no source answers with them again in this build. */
  readonly #refused = new Set<Digest>()

  constructor(inner: CacheBackend, blobs: Pick<BlobStore, 'has' | 'remote'>, sources: readonly CacheSource[], warn: (message: string) => void) {
    this.#inner = inner
    this.#blobs = blobs
    this.#sources = sources
    this.#warn = warn
    this.history = inner.history
  }

  /** Hits that came from an imported cache (not the store's own). */
  get imported(): number {
    return this.#importedKeys.size
  }

  /**
   * Refuses `layer` (its fetch found bytes that do not match its digest): the keys it answered are
   * forgotten, and a solve run again rebuilds them. False when it was refused already.
   */
  refuse(layer: Digest, why: string, source: string): boolean {
    if (this.#refused.has(layer)) return false
    this.#refused.add(layer)
    for (const [key, l] of this.used) {
      if (l.digest !== layer) continue
      this.used.delete(key)
      this.#importedKeys.delete(key)
    }
    this.#warn(`cache ${source}: layer ${layer} refused (${why}); the step is rebuilt`)
    return true
  }

  async lookup(key: CacheKey): Promise<LayerRef | undefined> {
    const own = await this.#inner.lookup(key)
    if (own) {
      this.used.set(key.digest, own)
      return own
    }
    for (const source of this.#sources) {
      const layer = source.records.get(key.digest)
      if (!layer || this.#refused.has(layer.digest)) continue
      if (!(await this.#blobs.has(layer.digest))) await this.#blobs.remote.record({ digest: layer.digest, size: layer.size, mediaType: layer.mediaType, source: source.remote })
      await this.#inner.record(key, { layer, keyDoc: key.doc })
      this.used.set(key.digest, layer)
      this.#importedKeys.add(key.digest)
      return layer
    }
    return undefined
  }

  async record(key: CacheKey, entry: CacheRecord): Promise<void> {
    await this.#inner.record(key, entry)
    this.used.set(key.digest, entry.layer)
  }
}

/**
 * The imported layer an error says a cache sent other bytes for (BLOB_CORRUPT naming the digest
 * and the cache, store/remote-blobs.ts), found on the error or its causes; else undefined.
 */
export function refusedLayerOf(e: unknown): { digest: Digest; source: string; why: string } | undefined {
  let cur: unknown = e
  for (let depth = 0; depth < 8 && cur; depth++) {
    if (isImagesmithError(cur) && cur.code === ErrorCodes.BLOB_CORRUPT) {
      const { digest, source } = cur.details as { digest?: unknown; source?: unknown }
      if (isDigest(digest) && typeof source === 'string') {
        const cause = (cur as Error).cause
        return { digest, source, why: cause instanceof Error ? cause.message : cur.message }
      }
    }
    cur = (cur as Error).cause
  }
  return undefined
}
