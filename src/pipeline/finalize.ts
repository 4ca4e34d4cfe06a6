import type { BlobStore } from '../store/blob-store.js'
import { canonicalJson } from '../util/canonical-json.js'
import { MediaType } from '../oci/media-types.js'
import type { FinalImage, ImageConfig, LayerRef, Manifest } from '../oci/types.js'

export type { FinalImage } from '../oci/types.js'

/**
 * Writes config and manifest blobs. Both are canonical JSON (sorted keys) so the manifest digest
 * depends only on content, not on the order options were applied in.
 */
export async function finalizeImage(blobs: BlobStore, config: ImageConfig, layers: readonly LayerRef[], annotations?: Readonly<Record<string, string>>): Promise<FinalImage> {
  const cfgBytes = canonicalJson(config)
  const cfg = await blobs.putBytes(cfgBytes)
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  }
  const m = await blobs.putBytes(canonicalJson(manifest))
  return { manifest, manifestDigest: m.digest, manifestSize: m.size, config, configDigest: cfg.digest, layers }
}
