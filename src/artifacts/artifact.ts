import type { Digest } from '../oci/media-types.js'
import type { FinalImage, ImageIndex, Manifest, Platform } from '../oci/types.js'

export type { FinalImage } from '../oci/types.js'

/** One image of an index, with the platform its descriptor names. */
export interface IndexImage {
  readonly platform: Platform
  readonly image: FinalImage
}

/**
 * A finished image index (a multi-platform image): the index manifest written to the store as
 * canonical JSON, and the images it lists, each with its platform (ggcr's `ImageIndex`).
 */
export interface FinalIndex {
  readonly kind: 'index'
  /** The index manifest (`application/vnd.oci.image.index.v1+json`). */
  readonly manifest: ImageIndex
  /** Digest and size of the index manifest's bytes, as stored. */
  readonly manifestDigest: Digest
  readonly manifestSize: number
  /** The images in the order the index lists them. */
  readonly images: readonly IndexImage[]
  /**
   * Attestation manifests (SBOM, provenance), listed after the images with platform unknown/unknown
   * as BuildKit stores them: not runnable, so exporters never offer them as images.
   */
  readonly attestations?: readonly AttestationManifest[]
}

/** One attestation manifest of an index: its in-toto statements describe the image `subject`. */
export interface AttestationManifest {
  /** The manifest digest of the image it attests. */
  readonly subject: Digest
  readonly manifest: Manifest
  readonly manifestDigest: Digest
  readonly manifestSize: number
}

/**
 * What a build finishes with and an exporter takes: one image, or an index of images. Both name
 * their top manifest by `manifestDigest`/`manifestSize`, so a reference or a descriptor to either
 * is made the same way.
 */
export type Artifact = FinalImage | FinalIndex

/** Every blob the artifact needs, its own manifest first, then each image's manifest, config and layers; without repeats. */
export function artifactBlobs(artifact: Artifact): Digest[] {
  const images = artifact.kind === 'index' ? artifact.images.map((i) => i.image) : [artifact]
  const all = new Set<Digest>(artifact.kind === 'index' ? [artifact.manifestDigest] : [])
  for (const image of images) {
    all.add(image.manifestDigest)
    all.add(image.configDigest)
    for (const l of image.layers) all.add(l.digest)
  }
  for (const a of artifact.kind === 'index' ? artifact.attestations ?? [] : []) {
    all.add(a.manifestDigest)
    all.add(a.manifest.config.digest)
    for (const l of a.manifest.layers) all.add(l.digest)
  }
  return [...all]
}
