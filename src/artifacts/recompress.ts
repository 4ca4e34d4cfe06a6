/**
 * An artifact whose layers are recompressed for an output (`compression=zstd`): new layer blobs
 * and new manifests in the store; the configs (diffIDs) are the same, so is what a container sees.
 * The store keeps the gzip layers the build made; only the output carries zstd.
 */
import { zstdLayer } from '../layer/zstd-layer.js'
import type { BlobStore } from '../store/blob-store.js'
import type { Artifact, AttestationManifest, FinalImage, IndexImage } from './artifact.js'
import { finalizeImage, finalizeIndex } from './finalize.js'

export interface ZstdArtifactOptions {
  /** zstd level 0–22. @default 3 */
  readonly level?: number
  /**
   * How many leading layers of `image` to keep as they are: its base image's, which buildx leaves
   * in their own compression unless `force-compression=true`. @default none kept
   */
  readonly keepLayers?: (image: FinalImage) => number
  /**
   * The attestation manifests of the recompressed images: their subjects must name the zstd
   * manifests, so they are made after the recompression. Any at all make an index even of one image.
   */
  readonly attest?: (images: readonly IndexImage[]) => Promise<readonly AttestationManifest[]>
  readonly signal?: AbortSignal
}

export async function zstdArtifact(artifact: Artifact, blobs: BlobStore, opts: ZstdArtifactOptions = {}): Promise<Artifact> {
  const one = async (image: FinalImage): Promise<FinalImage> => {
    const keep = Math.max(0, Math.min(opts.keepLayers?.(image) ?? 0, image.layers.length))
    const layers = [...image.layers.slice(0, keep)]
    for (const l of image.layers.slice(keep)) layers.push(await zstdLayer(blobs, l, opts.level, opts.signal))
    return finalizeImage(blobs, image.config, layers, image.manifest.annotations)
  }
  const sources: readonly IndexImage[] = artifact.kind === 'index' ? artifact.images : [{ platform: platformOf(artifact), image: artifact }]
  const images: IndexImage[] = []
  for (const { platform, image } of sources) images.push({ platform, image: await one(image) })
  const attestations = (await opts.attest?.(images)) ?? []
  if (artifact.kind === 'image' && attestations.length === 0) return images[0]!.image
  // Each image's descriptor keeps the annotations it had in the gzip index (buildx's `manifest-descriptor`).
  const descriptorOf = (digest: string) => (artifact.kind === 'index' ? artifact.manifest.manifests.find((d) => d.digest === digest)?.annotations : undefined)
  const byPlatform = new Map(images.map((img, i) => [img.platform, descriptorOf(sources[i]!.image.manifestDigest)]))
  return finalizeIndex(blobs, images, artifact.kind === 'index' ? artifact.manifest.annotations : undefined, (p) => byPlatform.get(p), attestations)
}

function platformOf(image: FinalImage): IndexImage['platform'] {
  const c = image.config
  return { os: c.os, architecture: c.architecture, ...(c.variant !== undefined ? { variant: c.variant } : {}) }
}
