import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { FinalImage, ImageConfig, Manifest } from '../oci/types.js'
import { parseImageName, parseReference, type ImageReference } from '../reference/reference.js'
import type { ImageNameRecord } from './image-names.js'
import type { Store } from './store.js'

// Lookups over the store's image names that take user text (references, id prefixes); ImageNames
// itself stays a plain name → record map that parses nothing.

/** The image a manifest digest in the store names, every blob it needs checked present. */
export async function storedImage(store: Store, digest: Digest, refText: string): Promise<FinalImage> {
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
  for (const l of manifest.layers) if (!(await store.blobs.has(l.digest as Digest))) throw missing(l.digest)
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

/** Records `name` → `image` in the store, as `docker build -t` and `docker tag` do. */
export async function nameImage(store: Store, name: string, image: Pick<FinalImage, 'manifestDigest' | 'manifestSize' | 'manifest'>, created = new Date()): Promise<ImageNameRecord> {
  const ref = parseImageName(name)
  const size = image.manifestSize + image.manifest.config.size + image.manifest.layers.reduce((n, l) => n + l.size, 0)
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
