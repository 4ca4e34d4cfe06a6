import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { BlobStore } from '../store/blob-store.js'
import { canonicalJson } from '../util/canonical-json.js'
import { MediaType } from '../oci/media-types.js'
import { formatPlatform } from '../oci/platform.js'
import type { Descriptor, FinalImage, ImageConfig, ImageIndex, LayerRef, Manifest, Platform } from '../oci/types.js'
import type { AttestationManifest, FinalIndex, IndexImage } from './artifact.js'

export type { FinalImage } from '../oci/types.js'

/** Index descriptor annotations of an attestation manifest (BuildKit's util/attestation/types.go). */
export const ATTESTATION_REFERENCE_TYPE = 'vnd.docker.reference.type'
export const ATTESTATION_REFERENCE_DIGEST = 'vnd.docker.reference.digest'
export const ATTESTATION_MANIFEST = 'attestation-manifest'

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
  return { kind: 'image', manifest, manifestDigest: m.digest, manifestSize: m.size, config, configDigest: cfg.digest, layers }
}

/**
 * Writes the OCI image index over finished images (their manifests are in `blobs` already), one
 * descriptor per image in the order given, each with its platform, as BuildKit writes a
 * multi-platform build's index. Canonical JSON, so the digest depends only on the images, their
 * platforms and `annotations` (the index's own). Each platform once, and each image's config must
 * be for the platform it is listed under: a runtime picks the image by the descriptor.
 */
export async function finalizeIndex(
  blobs: BlobStore,
  images: readonly IndexImage[],
  annotations?: Readonly<Record<string, string>>,
  /** Annotations of each image's descriptor in the index (buildx's `manifest-descriptor`). */
  descriptorAnnotations?: (platform: Platform) => Readonly<Record<string, string>> | undefined,
  /** Attestation manifests, each for one of `images`: listed after them as BuildKit lists them. */
  attestations: readonly AttestationManifest[] = [],
): Promise<FinalIndex> {
  if (images.length === 0) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, 'an image index needs at least one image', {})
  const seen = new Set<string>()
  const manifests: Descriptor[] = images.map(({ platform, image }) => {
    const name = formatPlatform(platform)
    if (seen.has(name)) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `the index lists two images for ${name}`, { platform: name })
    seen.add(name)
    const cfg = image.config
    if (cfg.os !== platform.os || cfg.architecture !== platform.architecture || (platform.variant !== undefined && cfg.variant !== undefined && cfg.variant !== platform.variant)) {
      const built = formatPlatform({ os: cfg.os, architecture: cfg.architecture, ...(cfg.variant !== undefined ? { variant: cfg.variant } : {}) })
      throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `the image ${image.manifestDigest} is for ${built}, not ${name}`, { platform: name, image: image.manifestDigest, built })
    }
    return {
      mediaType: image.manifest.mediaType,
      digest: image.manifestDigest,
      size: image.manifestSize,
      platform: { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}) },
      ...(descriptorAnnotations && Object.keys(descriptorAnnotations(platform) ?? {}).length > 0 ? { annotations: { ...descriptorAnnotations(platform) } } : {}),
    }
  })
  for (const a of attestations) {
    if (!images.some((i) => i.image.manifestDigest === a.subject)) {
      throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `an attestation for ${a.subject}, which the index does not list`, { subject: a.subject })
    }
    manifests.push({
      mediaType: a.manifest.mediaType,
      digest: a.manifestDigest,
      size: a.manifestSize,
      // unknown/unknown keeps a runtime from picking it; the annotations say what it attests (BuildKit's layout).
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { [ATTESTATION_REFERENCE_TYPE]: ATTESTATION_MANIFEST, [ATTESTATION_REFERENCE_DIGEST]: a.subject },
    })
  }
  const manifest: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests,
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  }
  const m = await blobs.putBytes(canonicalJson(manifest))
  return {
    kind: 'index', manifest, manifestDigest: m.digest, manifestSize: m.size, images: images.map((i) => ({ platform: i.platform, image: i.image })),
    ...(attestations.length > 0 ? { attestations } : {}),
  }
}
