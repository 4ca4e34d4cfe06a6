import type { Digest } from '../oci/media-types.js'
import type { LayerRef } from '../oci/types.js'
import type { CacheKey } from '../solver/types.js'
import type { Store } from '../store/store.js'
import { digestOf } from '../util/canonical-json.js'
import type { CacheBackend, CacheRecord, SlotRecord, StepHistory } from './backend.js'
import type { FileMap } from './miss-reason.js'

/**
 * The store's own cache: entries, slots and file maps are JSON files of its cache index (one per
 * key), and a hit needs the layer's blob in its blob store.
 */
export class LocalCacheBackend implements CacheBackend {
  readonly #store: Pick<Store, 'cache' | 'blobs'>
  readonly history: StepHistory

  constructor(store: Pick<Store, 'cache' | 'blobs'>) {
    this.#store = store
    const index = store.cache
    // A file map lives under a key of its own, derived from the entry's.
    const filesKey = (key: Digest) => digestOf({ files: key })
    this.history = {
      slot: (slot) => index.lookup<SlotRecord>(slot),
      pointSlot: (slot, record) => index.record(slot, record),
      entry: (key) => index.lookup<Partial<CacheRecord>>(key),
      files: (key) => index.lookup<FileMap>(filesKey(key)),
      recordFiles: (key, files) => index.record(filesKey(key), files),
    }
  }

  async lookup(key: CacheKey): Promise<LayerRef | undefined> {
    // Entries of an older shape (a bare LayerRef) have no `layer`: a miss, rewritten when recorded.
    const hit = await this.#store.cache.lookup<Partial<CacheRecord>>(key.digest)
    return hit?.layer && (await this.#store.blobs.has(hit.layer.digest)) ? hit.layer : undefined
  }

  record(key: CacheKey, entry: CacheRecord): Promise<void> {
    return this.#store.cache.record(key.digest, entry)
  }
}
