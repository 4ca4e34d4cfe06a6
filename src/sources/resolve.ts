import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { MediaType, isDigest, type Digest } from '../oci/media-types.js'
import { formatPlatform } from '../oci/platform.js'
import type { Descriptor, ImageConfig, ImageIndex, LayerRef, Manifest, Platform } from '../oci/types.js'
import type { BlobStore } from '../store/blob-store.js'
import { platformMatches } from '../oci/platform.js'

/**
 * Where blobs come from. A source (a layout dir, an archive, later a registry) implements only
 * this; the walk from index to layers is {@link resolveImage}'s, the same for every source.
 */
export interface BlobFetcher {
  /** Ensures the blob is in the store, verified against `desc.digest`. */
  fetch(desc: Descriptor, signal?: AbortSignal): Promise<void>
}

export interface ResolveRequest {
  /** The reference as the user wrote it, for messages and error details. */
  readonly ref: string
  /** Where the walk starts: an index's descriptors (already narrowed to a tag) or one manifest's. */
  readonly roots: readonly Descriptor[]
  readonly platform: Platform
  readonly blobs: Pick<BlobStore, 'readJson' | 'size'>
  readonly fetcher: BlobFetcher
  readonly signal?: AbortSignal
}

/** A base image whose manifest, config and layer blobs are all in the store. */
export interface ResolvedImage {
  readonly manifestDigest: Digest
  readonly manifest: Manifest
  readonly configDigest: Digest
  readonly config: ImageConfig
  readonly layers: readonly LayerRef[]
}

const INDEX_TYPES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList])
const MANIFEST_TYPES = new Set<string>([MediaType.OciManifest, MediaType.DockerManifest])
const CONFIG_TYPES = new Set<string>([MediaType.OciConfig, MediaType.DockerConfig])
/** Docker's layer types carry the same bytes as OCI's; the image we write is OCI throughout. */
const OCI_LAYER_TYPE: Readonly<Record<string, string>> = {
  [MediaType.DockerLayer]: MediaType.OciLayer,
  [MediaType.DockerLayerGzip]: MediaType.OciLayerGzip,
}
/** Nested indexes deeper than this are refused (a cycle cannot be built from digests, but a chain can). */
const MAX_DEPTH = 8
/**
 * Descriptors one resolution looks at, over every index it reads. Real indexes list a few dozen
 * (platforms plus attestations); this bounds the documents fetched for one image.
 */
export const MAX_DESCRIPTORS = 1024
/** Manifests and indexes larger than this are refused unread (containers/image's limit too). */
export const MAX_MANIFEST_BYTES = 4 << 20
/**
 * Image configs larger than this are refused unread: a config is JSON parsed in memory, and real ones
 * are kilobytes (containers/image allows 4 MiB; twice that leaves room for long histories).
 */
export const MAX_CONFIG_BYTES = 8 << 20
const LAYER_FETCHES = 4

export function baseInvalid(ref: string, why: string, details: Record<string, unknown> = {}, cause?: unknown): ImagesmithError {
  return new ImagesmithError(ErrorCodes.BASE_IMAGE_INVALID, `base image ${ref}: ${why}`, { reference: ref, ...details }, { cause })
}

type Doc = { kind: 'index'; index: ImageIndex } | { kind: 'manifest'; manifest: Manifest }

/**
 * index → platform → manifest → config + layers. Handles OCI indexes and Docker manifest lists,
 * nested indexes, and platform variants; descriptors without a platform are taken as they come.
 * When nothing matches, the error lists every platform the image offers.
 */
export async function resolveImage(req: ResolveRequest): Promise<ResolvedImage> {
  const offered = new Set<string>()
  const found = await walk(req, req.roots, 0, { offered, walked: new Set(), descriptors: 0 })
  if (!found) {
    const offers = [...offered]
    throw new ImagesmithError(
      ErrorCodes.PLATFORM_NOT_FOUND,
      `${req.ref} has no image for ${formatPlatform(req.platform)}` + (offers.length ? `; it offers ${offers.join(', ')}` : ''),
      { reference: req.ref, platform: formatPlatform(req.platform), available: offers },
    )
  }
  return readImage(req, found.desc, found.manifest)
}

/** What one resolution has seen so far, across every index it walks. */
interface WalkState {
  readonly offered: Set<string>
  /** Indexes already walked (and found without a match): the same digest gives the same answer. */
  readonly walked: Set<string>
  descriptors: number
}

async function walk(req: ResolveRequest, descs: readonly Descriptor[], depth: number, state: WalkState): Promise<{ desc: Descriptor; manifest: Manifest } | undefined> {
  if (depth > MAX_DEPTH) throw baseInvalid(req.ref, `indexes nested more than ${MAX_DEPTH} deep`, { limit: MAX_DEPTH })
  state.descriptors += descs.length
  if (state.descriptors > MAX_DESCRIPTORS) throw baseInvalid(req.ref, `its indexes list more than ${MAX_DESCRIPTORS} descriptors`, { limit: MAX_DESCRIPTORS })
  for (const d of descs) if (d.platform && d.platform.os !== 'unknown') state.offered.add(formatPlatform(d.platform))
  // Exact platform matches first, in index order; then descriptors that state no platform.
  const candidates = [...descs.filter((d) => d.platform && platformMatches(d.platform, req.platform)), ...descs.filter((d) => !d.platform)]
  for (const desc of candidates) {
    // An index listed twice (or reached along two paths) is read and walked once: repeated entries
    // would otherwise multiply per level (12 entries, 8 levels: 12^7 walks of the same document).
    if (state.walked.has(desc.digest)) continue
    const doc = await readDoc(req, desc)
    if (doc.kind === 'manifest') return { desc, manifest: doc.manifest }
    state.walked.add(desc.digest)
    const inner = await walk(req, doc.index.manifests ?? [], depth + 1, state)
    if (inner) return inner
  }
  return undefined
}

async function readDoc(req: ResolveRequest, desc: Descriptor): Promise<Doc> {
  throwIfAborted(req.signal)
  if (!isDigest(desc.digest)) throw baseInvalid(req.ref, `unsupported digest ${JSON.stringify(desc.digest)} (sha256 only)`, { digest: desc.digest })
  if (desc.mediaType && !INDEX_TYPES.has(desc.mediaType) && !MANIFEST_TYPES.has(desc.mediaType)) {
    throw baseInvalid(req.ref, `${desc.digest} is a ${desc.mediaType}, not an image manifest or index`, { digest: desc.digest, mediaType: desc.mediaType })
  }
  const doc = await readCapped<Partial<ImageIndex & Manifest> & { schemaVersion?: number }>(req, desc, MAX_MANIFEST_BYTES, 'manifest')
  if (doc.schemaVersion !== 2) throw baseInvalid(req.ref, `manifest ${desc.digest} has schemaVersion ${String(doc.schemaVersion)}; only version 2 is supported`, { digest: desc.digest })
  // The document's own shape decides: some writers leave mediaType out of one side or the other.
  if (Array.isArray(doc.manifests)) return { kind: 'index', index: doc as ImageIndex }
  if (doc.config && Array.isArray(doc.layers)) return { kind: 'manifest', manifest: doc as Manifest }
  throw baseInvalid(req.ref, `${desc.digest} is neither an image manifest nor an index`, { digest: desc.digest })
}

/**
 * Fetches a JSON document the resolver parses in memory, refusing it unread when its descriptor
 * states more than `max` bytes (so it never enters the store), and when the stored blob is larger
 * all the same (a source that does not hold to the descriptor's size).
 */
async function readCapped<T>(req: ResolveRequest, desc: Descriptor, max: number, what: 'manifest' | 'config'): Promise<T> {
  const tooLarge = (size: number): ImagesmithError =>
    baseInvalid(req.ref, `its ${what} ${desc.digest} is ${size} bytes, more than the ${max} bytes a ${what} may have`, { digest: desc.digest, size, limit: max })
  if (typeof desc.size === 'number' && desc.size > max) throw tooLarge(desc.size)
  await req.fetcher.fetch(desc, req.signal)
  const size = await req.blobs.size(desc.digest)
  if (size > max) throw tooLarge(size)
  return req.blobs.readJson<T>(desc.digest)
}

async function readImage(req: ResolveRequest, desc: Descriptor, manifest: Manifest): Promise<ResolvedImage> {
  const cfg = manifest.config
  if (cfg.mediaType && !CONFIG_TYPES.has(cfg.mediaType)) {
    throw baseInvalid(req.ref, `its config is a ${cfg.mediaType}: not a container image`, { digest: desc.digest, mediaType: cfg.mediaType })
  }
  if (!isDigest(cfg.digest)) throw baseInvalid(req.ref, `unsupported config digest ${JSON.stringify(cfg.digest)}`)
  const config = await readCapped<ImageConfig>(req, cfg, MAX_CONFIG_BYTES, 'config')
  const diffIds = config.rootfs?.diff_ids ?? []
  if (diffIds.length !== manifest.layers.length) {
    throw baseInvalid(req.ref, `the manifest has ${manifest.layers.length} layers and the config ${diffIds.length} diff_ids`, { digest: desc.digest })
  }
  const layers: LayerRef[] = manifest.layers.map((l, i) => {
    if (!isDigest(l.digest)) throw baseInvalid(req.ref, `unsupported layer digest ${JSON.stringify(l.digest)}`)
    return { digest: l.digest, diffId: diffIds[i]!, size: l.size, mediaType: OCI_LAYER_TYPE[l.mediaType] ?? l.mediaType }
  })
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < manifest.layers.length) {
      const l = manifest.layers[next++]!
      throwIfAborted(req.signal)
      await req.fetcher.fetch(l, req.signal)
    }
  }
  await Promise.all(Array.from({ length: Math.min(LAYER_FETCHES, manifest.layers.length) }, worker))
  return { manifestDigest: desc.digest, manifest, configDigest: cfg.digest, config, layers }
}
