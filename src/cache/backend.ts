/**
 * Where layer steps find and leave their layers by cache key: the store's own index today; a
 * registry cache or a local cache directory can answer beside it later (BuildKit's cache importers
 * and exporters), without any op knowing. The solver asks it for a step's key before the step runs.
 */
import type { Digest } from '../oci/media-types.js'
import type { LayerRef } from '../oci/types.js'
import type { CacheKey, CacheKeyDoc } from '../solver/types.js'
import type { FileMap } from './miss-reason.js'

/** What is recorded under a key: the layer, and the document the key was hashed from. */
export interface CacheRecord {
  readonly layer: LayerRef
  readonly keyDoc: CacheKeyDoc
  /** The step that made it (presentation, for `imagesmith cache ls`; never in the key). */
  readonly description?: string
  readonly stage?: string
}

/** The last key recorded for a step's slot (stage, step text, op): what a later miss is compared with. */
export interface SlotRecord {
  readonly key: Digest
  /** The step (presentation, for `imagesmith cache ls`). */
  readonly description?: string
  readonly stage?: string
}

export interface CacheBackend {
  /**
   * The layer recorded under `key`, only when the build's store holds its blob or knows where to
   * fetch it (an imported cache's hit is recorded remote, store/remote-blobs.ts, and fetched when
   * read); undefined for a miss.
   */
  lookup(key: CacheKey): Promise<LayerRef | undefined>
  /** Records the layer made for `key` (its blob is already in the build's store). */
  record(key: CacheKey, entry: CacheRecord): Promise<void>
  /**
   * What this backend remembers of each step's previous builds, to explain a miss and to hand a COPY
   * the layer it made last time. Optional: it describes the builds of one store (a COPY hard-links
   * files from that build's unpacked snapshot, which only that store has), so a backend that only
   * answers for keys has none, and its misses read as a step's first build.
   */
  readonly history?: StepHistory
}

/**
 * Per-step records beside the cache entries. A slot names a step by what a rebuild keeps (stage,
 * step text, op) and points at the key it last had; a file map says what each file of a context
 * copy contributed to a key.
 */
export interface StepHistory {
  slot(slot: Digest): Promise<SlotRecord | undefined>
  pointSlot(slot: Digest, record: SlotRecord): Promise<void>
  /** The entry recorded under `key`, whether or not its blob is still there (entries of an older shape lack fields). */
  entry(key: Digest): Promise<Partial<CacheRecord> | undefined>
  files(key: Digest): Promise<FileMap | undefined>
  recordFiles(key: Digest, files: FileMap): Promise<void>
}
