/**
 * An image to look into, wherever it is: an OCI archive or layout on disk, or a local image name
 * in the store; its layers are opened one at a time, as streams.
 */
import { existsSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import { formatPlatform } from '../oci/platform.js'
import { openImages, type InspectedImage } from '../sources/inspect.js'
import { findLocalImage, storedArtifact } from '../store/local-images.js'
import { Store } from '../store/store.js'

export interface ImageSource {
  readonly images: readonly InspectedImage[]
  openBlob(digest: Digest): Readable | undefined
  close(): Promise<void>
}

/**
 * `text` as a path if one exists there, else a local image name (as `imagesmith images` lists them).
 * `prepare` gets the store before any layer is read: a named image's layers may still be remote (an
 * imported build cache answered for them), and only a caller that can reach registries installs
 * their fetchers.
 */
export async function openImageSource(text: string, cacheDir: string, prepare?: (store: Store) => void): Promise<ImageSource> {
  if (existsSync(text)) return openImages(text)
  const store = new Store(cacheDir)
  await store.init()
  prepare?.(store)
  const record = await findLocalImage(store, text)
  if (!record) {
    throw new ImagesmithError(ErrorCodes.IMAGE_NOT_FOUND, `no archive or layout at ${text}, and no local image ${text} (see imagesmith images)`, { reference: text, path: text })
  }
  const name = `${record.repository}:${record.tag}`
  const a = await storedArtifact(store, record.digest as Digest, text)
  const images: InspectedImage[] = a.kind === 'image'
    ? [{ name, manifestDigest: a.manifestDigest, manifest: a.manifest, config: a.config }]
    : a.images.map(({ platform, image }) => ({ name, manifestDigest: image.manifestDigest, manifest: image.manifest, config: image.config, platform: formatPlatform(platform), indexDigest: a.manifestDigest }))
  return { images, openBlob: (d) => store.blobs.open(d), close: async () => {} }
}
