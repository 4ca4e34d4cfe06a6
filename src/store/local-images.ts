import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { FinalImage, ImageConfig, ImageIndex, Manifest, Platform } from '../oci/types.js'
import type { FinalIndex } from '../artifacts/artifact.js'
import { formatPlatform, platformMatches } from '../oci/platform.js'
import { parseImageName, parseReference, type ImageReference } from '../reference/reference.js'
import type { ImageNameRecord } from './image-names.js'
import type { Store } from './store.js'

// Lookups over the store's image names that take user text (references, id prefixes); ImageNames
// itself stays a plain name → record map that parses nothing.

/**
 * What a digest in the store names: an image, or an index (a multi-platform build's) with each of its
 * images, every blob they need checked present.
 */
export async function storedArtifact(store: Store, digest: Digest, refText: string): Promise<FinalImage | FinalIndex> {
  let top: Manifest | ImageIndex
  try {
    top = await store.blobs.readJson<Manifest | ImageIndex>(digest)
  } catch (e) {
    throw new ImagesmithError(ErrorCodes.IMAGE_NOT_FOUND, `image ${refText}: blob ${digest} is gone from the store (pruned with --all?)`, { reference: refText, digest }, { cause: e })
  }
  if (!('manifests' in top) || !Array.isArray(top.manifests)) return manifestImage(store, digest, refText)
  // Our own indexes list one image per platform; a stranger's is bounded by the store's blob count.
  const images = []
  const attestations = []
  for (const d of top.manifests) {
    if (!d.platform) continue
    // Attestation manifests (platform unknown/unknown) are no images: kept beside them, as built.
    const subject = d.annotations?.['vnd.docker.reference.digest']
    if (d.platform.os === 'unknown') {
      if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' && subject) {
        attestations.push({ subject: subject as Digest, manifest: await store.blobs.readJson<Manifest>(d.digest as Digest), manifestDigest: d.digest as Digest, manifestSize: d.size })
      }
      continue
    }
    images.push({ platform: d.platform, image: await manifestImage(store, d.digest as Digest, refText) })
  }
  return { kind: 'index', manifest: top, manifestDigest: digest, manifestSize: await store.blobs.size(digest), images, ...(attestations.length > 0 ? { attestations } : {}) }
}

/**
 * The image a digest in the store names for `platform`: the digest's own when it is an image's, the
 * one its index lists for the platform (PLATFORM_NOT_FOUND, naming what it has, when none); without a
 * platform, an index's first image.
 */
export async function storedImage(store: Store, digest: Digest, refText: string, platform?: Platform): Promise<FinalImage> {
  const a = await storedArtifact(store, digest, refText)
  if (a.kind === 'image') return a
  const hit = platform ? a.images.find((i) => platformMatches(i.platform, platform)) : a.images[0]
  if (hit) return hit.image
  const available = a.images.map((i) => formatPlatform(i.platform))
  const wanted = platform ? formatPlatform(platform) : 'any platform'
  throw new ImagesmithError(ErrorCodes.PLATFORM_NOT_FOUND, `${refText} has no image for ${wanted} (it has ${available.join(', ') || 'none'})`, { reference: refText, platform: wanted, available })
}

async function manifestImage(store: Store, digest: Digest, refText: string): Promise<FinalImage> {
  const missing = (d: string, cause?: unknown) =>
    new ImagesmithError(ErrorCodes.IMAGE_NOT_FOUND, `image ${refText}: blob ${d} is gone from the store (pruned with --all?)`, { reference: refText, digest: d }, { cause })
  let manifest: Manifest
  let config: ImageConfig
  try {
    manifest = await store.blobs.readJson<Manifest>(digest)
  } catch (e) {
    throw missing(digest, e)
  }
  try {
    config = await store.blobs.readJson<ImageConfig>(manifest.config.digest as Digest)
  } catch (e) {
    throw missing(manifest.config.digest, e)
  }
  // A layer an imported cache answered for may still be remote: readers fetch it (blobs.ensure).
  for (const l of manifest.layers) if (!(await store.blobs.known(l.digest as Digest))) throw missing(l.digest)
  const layers = manifest.layers.map((l, i) => ({ digest: l.digest as Digest, diffId: config.rootfs.diff_ids[i] as Digest, size: l.size, mediaType: l.mediaType }))
  return { kind: 'image', manifest, manifestDigest: digest, manifestSize: await store.blobs.size(digest), config, configDigest: manifest.config.digest as Digest, layers }
}

/** The record of a local name (`app:1`, `docker.io/library/app:1`) or of a digest / id prefix. */
export async function findLocalImage(store: Store, text: string): Promise<ImageNameRecord | undefined> {
  const id = /^(sha256:)?([0-9a-f]{6,64})$/.exec(text)
  if (id) {
    const hit = (await store.images.list()).find((r) => r.digest.slice('sha256:'.length).startsWith(id[2]!))
    if (hit) return hit
  }
  let ref: ImageReference
  try {
    ref = parseReference(text)
  } catch (e) {
    if (id) return undefined
    throw e
  }
  return ref.tag !== undefined && ref.digest === undefined ? store.images.get(`${ref.name}:${ref.tag}`) : undefined
}

/** Like {@link findLocalImage}, failing with IMAGE_NOT_FOUND. */
export async function requireLocalImage(store: Store, text: string): Promise<ImageNameRecord> {
  const r = await findLocalImage(store, text)
  if (!r) throw new ImagesmithError(ErrorCodes.IMAGE_NOT_FOUND, `no local image ${text} (see imagesmith images)`, { reference: text })
  return r
}

/**
 * Records `name` → `image` in the store, as `docker build -t` and `docker tag` do; an index (a
 * multi-platform build) is named as one image, its size every blob once.
 */
export async function nameImage(store: Store, name: string, image: Pick<FinalImage, 'manifestDigest' | 'manifestSize' | 'manifest'> | FinalIndex, created = new Date()): Promise<ImageNameRecord> {
  const ref = parseImageName(name)
  const sizes = new Map<string, number>([[image.manifestDigest, image.manifestSize]])
  const images = 'kind' in image && image.kind === 'index' ? image.images.map((i) => i.image) : [image as Pick<FinalImage, 'manifestDigest' | 'manifestSize' | 'manifest'>]
  for (const i of images) {
    sizes.set(i.manifestDigest, i.manifestSize)
    sizes.set(i.manifest.config.digest, i.manifest.config.size)
    for (const l of i.manifest.layers) sizes.set(l.digest, l.size)
  }
  const size = images.length === 1 && images[0] === image
    ? image.manifestSize + image.manifest.config.size + image.manifest.layers.reduce((n, l) => n + l.size, 0)
    : [...sizes.values()].reduce((n, s) => n + s, 0)
  const record: ImageNameRecord = {
    name: `${ref.name}:${ref.tag}`,
    repository: ref.familiar.slice(0, ref.familiar.length - ref.tag.length - 1),
    tag: ref.tag,
    digest: image.manifestDigest,
    created: created.toISOString(),
    size,
  }
  await store.images.set(record)
  return record
}
