/**
 * The shared build cache's wire format: one OCI image manifest (as BuildKit >= 0.21 writes its
 * registry cache, so every registry that takes images takes it) whose config has our own media type
 * and records cache key → layer, and whose `layers` are the cache blobs. Inline, the same records sit
 * in a pushed image's config under {@link INLINE_CACHE_FIELD}, naming that image's layers.
 *
 * The keys are ours (digests of canonical key documents, see cache/layer-cache.ts); BuildKit's are
 * digests of its LLB protobufs, so neither tool can use the other's cache.
 */
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { MediaType, isDigest, type Digest } from '../oci/media-types.js'
import type { Descriptor, LayerRef, Manifest } from '../oci/types.js'
import { canonicalJson } from '../util/canonical-json.js'

export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.imagesmith.cache.config.v1+json'
/** The image config field an inline cache's records live in. */
export const INLINE_CACHE_FIELD = 'imagesmith.cache.v1'

/** Bounds on what an import reads: a cache of more records or bytes is refused, not read. */
export const MAX_CACHE_RECORDS = 10_000
export const MAX_CACHE_CONFIG_BYTES = 4 << 20
/** Layer media types a record may name: what a build writes or a base brings. */
const LAYER_TYPES: ReadonlySet<string> = new Set([MediaType.OciLayer, MediaType.OciLayerGzip, MediaType.OciLayerZstd, MediaType.DockerLayer, MediaType.DockerLayerGzip])

/** One cache record: the layer a step made for a key. */
export interface CacheEntry {
  readonly key: Digest
  readonly layer: LayerRef
}

/** The config document: records sorted by key, so the same cache is the same bytes. */
export interface CacheConfigDoc {
  readonly schemaVersion: 1
  readonly records: readonly { readonly key: Digest; readonly digest: Digest; readonly diffId: Digest; readonly size: number; readonly mediaType: string }[]
}

/** A cache artifact ready to write: the config and manifest bytes, and the layers the manifest lists. */
export interface CacheArtifact {
  readonly config: Buffer
  readonly configDigest: Digest
  readonly manifest: Buffer
  readonly manifestDigest: Digest
  readonly layers: readonly LayerRef[]
}

export function configDoc(entries: Iterable<CacheEntry>): CacheConfigDoc {
  const byKey = new Map<Digest, LayerRef>()
  for (const e of entries) byKey.set(e.key, e.layer)
  const records = [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, l]) => ({ key, digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType }))
  return { schemaVersion: 1, records }
}

export function buildCacheArtifact(entries: Iterable<CacheEntry>, sha256: (b: Buffer) => Digest): CacheArtifact {
  const doc = configDoc(entries)
  const config = Buffer.from(canonicalJson(doc))
  const configDigest = sha256(config)
  const layers: LayerRef[] = []
  const seen = new Set<string>()
  for (const r of doc.records) {
    if (seen.has(r.digest)) continue
    seen.add(r.digest)
    layers.push({ digest: r.digest, diffId: r.diffId, size: r.size, mediaType: r.mediaType })
  }
  const manifest: Manifest & { artifactType: string } = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: CACHE_CONFIG_MEDIA_TYPE,
    config: { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: configDigest, size: config.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  }
  const bytes = Buffer.from(canonicalJson(manifest))
  return { config, configDigest, manifest: bytes, manifestDigest: sha256(bytes), layers }
}

function invalid(source: string, field: string, why: string): ImagesmithError {
  return new ImagesmithError(ErrorCodes.CACHE_INVALID, `cache ${source} is not a usable imagesmith cache: ${why}`, { source, field })
}

function parseJson(bytes: Buffer, source: string, field: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch {
    throw invalid(source, field, `its ${field} is not JSON`)
  }
}

const isSize = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0

function descriptor(d: unknown, source: string, field: string): Descriptor {
  const o = d as Partial<Descriptor> | null
  if (typeof o !== 'object' || o === null || !isDigest(o.digest) || !isSize(o.size) || typeof o.mediaType !== 'string' || o.mediaType.length > 255) {
    throw invalid(source, field, `${field} is not a descriptor (digest, size, mediaType)`)
  }
  return { mediaType: o.mediaType, digest: o.digest, size: o.size }
}

/**
 * The config descriptor and layers of a cache manifest; CACHE_INVALID when it is not ours (another
 * tool's cache, an image) or breaks a bound.
 */
export function parseCacheManifest(bytes: Buffer, source: string): { config: Descriptor; layers: readonly Descriptor[] } {
  const doc = parseJson(bytes, source, 'manifest') as Partial<Manifest> | null
  if (typeof doc !== 'object' || doc === null || doc.schemaVersion !== 2 || typeof doc.config !== 'object') throw invalid(source, 'manifest', 'it is not an OCI image manifest')
  const config = descriptor(doc.config, source, 'config')
  if (config.mediaType !== CACHE_CONFIG_MEDIA_TYPE) throw invalid(source, 'config.mediaType', `its config is ${config.mediaType.slice(0, 100)}, not ${CACHE_CONFIG_MEDIA_TYPE} (another tool's cache, or an image)`)
  if (config.size > MAX_CACHE_CONFIG_BYTES) throw invalid(source, 'config.size', `its config is ${config.size} bytes (at most ${MAX_CACHE_CONFIG_BYTES})`)
  if (!Array.isArray(doc.layers) || doc.layers.length > MAX_CACHE_RECORDS) throw invalid(source, 'layers', `layers is not a list of at most ${MAX_CACHE_RECORDS}`)
  return { config, layers: doc.layers.map((l, i) => descriptor(l, source, `layers[${i}]`)) }
}

/**
 * The records of a cache config (or an inline cache's field value), each checked: digests
 * well-formed, the layer one of `layers` with the same size and media type, a layer media type.
 */
export function parseCacheRecords(value: unknown, layers: readonly Descriptor[], source: string): Map<Digest, LayerRef> {
  const doc = value as Partial<CacheConfigDoc> | null
  if (typeof doc !== 'object' || doc === null || doc.schemaVersion !== 1 || !Array.isArray(doc.records)) throw invalid(source, 'config', 'its config is not schemaVersion 1 with records')
  if (doc.records.length > MAX_CACHE_RECORDS) throw invalid(source, 'records', `it has ${doc.records.length} records (at most ${MAX_CACHE_RECORDS})`)
  const byDigest = new Map(layers.map((l) => [l.digest, l]))
  const out = new Map<Digest, LayerRef>()
  for (const [i, r] of doc.records.entries()) {
    const field = `records[${i}]`
    if (typeof r !== 'object' || r === null || !isDigest(r.key) || !isDigest(r.digest) || !isDigest(r.diffId) || !isSize(r.size) || typeof r.mediaType !== 'string') {
      throw invalid(source, field, `${field} is not { key, digest, diffId, size, mediaType } with sha256 digests`)
    }
    if (!LAYER_TYPES.has(r.mediaType)) throw invalid(source, `${field}.mediaType`, `${field} names media type ${r.mediaType.slice(0, 100)}, not a layer's`)
    const d = byDigest.get(r.digest)
    if (!d || d.size !== r.size || d.mediaType !== r.mediaType) throw invalid(source, `${field}.digest`, `${field} names layer ${r.digest}, which the manifest does not list with that size and media type`)
    out.set(r.key, { digest: r.digest, diffId: r.diffId, size: r.size, mediaType: r.mediaType })
  }
  return out
}

/** {@link parseCacheRecords} of a cache config blob's bytes. */
export function parseCacheConfig(bytes: Buffer, layers: readonly Descriptor[], source: string): Map<Digest, LayerRef> {
  if (bytes.length > MAX_CACHE_CONFIG_BYTES) throw invalid(source, 'config', `its config is ${bytes.length} bytes (at most ${MAX_CACHE_CONFIG_BYTES})`)
  return parseCacheRecords(parseJson(bytes, source, 'config'), layers, source)
}
