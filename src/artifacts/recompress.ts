/**
 * An artifact whose layers are recompressed for an output (`compression=zstd`): new layer blobs
 * and new manifests in the store; the configs (diffIDs) are the same, so is what a container sees.
 * The store keeps the gzip layers the build made; only the output carries zstd.
 */
import { zstdLayer } from '../layer/zstd-layer.js'
import type { BlobStore } from '../store/blob-store.js'
import type { Artifact, FinalImage } from './artifact.js'
import { finalizeImage, finalizeIndex } from './finalize.js'

export async function zstdArtifact(artifact: Artifact, blobs: BlobStore, level: number | undefined, signal?: AbortSignal): Promise<Artifact> {
  const one = async (image: FinalImage): Promise<FinalImage> => {
    const layers = []
    for (const l of image.layers) layers.push(await zstdLayer(blobs, l, level, signal))
    return finalizeImage(blobs, image.config, layers, image.manifest.annotations)
  }
  if (artifact.kind === 'image') return one(artifact)
  const images = []
  for (const { platform, image } of artifact.images) images.push({ platform, image: await one(image) })
  return finalizeIndex(blobs, images, artifact.manifest.annotations)
}
