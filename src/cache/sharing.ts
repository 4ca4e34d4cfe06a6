import { ErrorCodes, isImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { LayerRef } from '../oci/types.js'
import type { CacheKey } from '../solver/types.js'
import type { BlobStore } from '../store/blob-store.js'
import type { CacheBackend, CacheRecord, StepHistory } from './backend.js'

/** An imported cache (a registry ref, a cache directory, an image's inline records): its records, and how to bring a layer's blob in. */
export interface CacheSource {
  /** What the cache is called in warnings: `type=registry,ref=…`. */
  readonly name: string
  readonly records: ReadonlyMap<Digest, LayerRef>
  /**
   * Brings the layer's blob into the build's store, verified against its digest while it streams:
   * a blob whose bytes do not match is refused and nothing is stored.
   */
  fetch(layer: LayerRef): Promise<void>
}

/**
 * The store's own cache with imported caches behind it (BuildKit's cache importers): a key the store
 * misses is looked up in each source in order; a hit's blob is fetched only then (the cache's
 * manifest and config were all that was read before), checked, and the hit recorded in the store so
 * the next build finds it there. A blob that cannot be fetched or does not match is a warning and
 * the next source (or a rebuild) answers. Every key the build hit or made is kept for an export.
 */
export class SharingCacheBackend implements CacheBackend {
  readonly #inner: CacheBackend
  readonly #blobs: Pick<BlobStore, 'has'>
  readonly #sources: readonly CacheSource[]
  readonly #warn: (message: string) => void
  readonly history: StepHistory | undefined
  /** Every key this build hit or made, with its layer: what an export writes. */
  readonly used = new Map<Digest, LayerRef>()
  /** Hits that came from an imported cache (not the store's own). */
  imported = 0

  constructor(inner: CacheBackend, blobs: Pick<BlobStore, 'has'>, sources: readonly CacheSource[], warn: (message: string) => void) {
    this.#inner = inner
    this.#blobs = blobs
    this.#sources = sources
    this.#warn = warn
    this.history = inner.history
  }

  async lookup(key: CacheKey): Promise<LayerRef | undefined> {
    const own = await this.#inner.lookup(key)
    if (own) {
      this.used.set(key.digest, own)
      return own
    }
    for (const source of this.#sources) {
      const layer = source.records.get(key.digest)
      if (!layer) continue
      try {
        if (!(await this.#blobs.has(layer.digest))) await source.fetch(layer)
      } catch (e) {
        if (isImagesmithError(e) && e.code === ErrorCodes.ABORTED) throw e
        this.#warn(`cache ${source.name}: layer ${layer.digest} refused (${(e as Error).message}); the step is rebuilt`)
        continue
      }
      await this.#inner.record(key, { layer, keyDoc: key.doc })
      this.used.set(key.digest, layer)
      this.imported++
      return layer
    }
    return undefined
  }

  async record(key: CacheKey, entry: CacheRecord): Promise<void> {
    await this.#inner.record(key, entry)
    this.used.set(key.digest, entry.layer)
  }
}
