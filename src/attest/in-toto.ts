import type { AttestationManifest } from '../artifacts/artifact.js'
import { MediaType, type Digest } from '../oci/media-types.js'
import type { Descriptor, FinalImage, ImageConfig, Manifest } from '../oci/types.js'
import type { BlobStore } from '../store/blob-store.js'
import { canonicalJson } from '../util/canonical-json.js'

/** Layer media type of an in-toto statement in an attestation manifest (the only one BuildKit writes). */
export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json'
/** Layer annotation naming the statement's predicate type. */
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type'
/** Statement type: v0.1 goes with SLSA provenance v0.2, and every BuildKit-attestation reader takes it. */
export const STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1'
export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1'
export const SPDX_PREDICATE = 'https://spdx.dev/Document'
export const SLSA_V02_PREDICATE = 'https://slsa.dev/provenance/v0.2'
/** artifactType of BuildKit's OCI-artifact attestation manifests (read, not written). */
export const ATTESTATION_ARTIFACT_TYPE = 'application/vnd.docker.attestation.manifest.v1+json'

export interface Statement {
  readonly _type: string
  readonly subject: readonly { readonly name: string; readonly digest: { readonly sha256: string } }[]
  readonly predicateType: string
  readonly predicate: unknown
}

/**
 * The statement's subjects: one per image name, as BuildKit names them
 * (`pkg:docker/<name>@<tag>?platform=<os/arch>`, the platform percent-encoded), or `_` without one.
 */
export function statementSubjects(image: FinalImage, names: readonly string[], platform: string): Statement['subject'] {
  const sha256 = image.manifestDigest.slice(7)
  if (names.length === 0) return [{ name: '_', digest: { sha256 } }]
  return names.map((n) => ({ name: `pkg:docker/${n}?platform=${encodeURIComponent(platform)}`, digest: { sha256 } }))
}

/**
 * Writes one attestation manifest for `image` in the classic ("image") shape BuildKit wrote up to
 * v0.31 and still writes with `oci-artifact=false`: a config with platform unknown/unknown, one
 * layer per statement (uncompressed JSON). Chosen over the OCI-artifact shape (`artifactType`,
 * `subject`, empty config) because every reader of BuildKit attestations takes it (buildx
 * imagetools, Docker Scout, containerd, podman, skopeo) and registries without OCI 1.1 support
 * store it as any image; the index descriptor's annotations say what it attests either way.
 */
export async function writeAttestationManifest(blobs: BlobStore, image: FinalImage, statements: readonly Statement[]): Promise<AttestationManifest> {
  const layers: Descriptor[] = []
  for (const s of statements) {
    const put = await blobs.putBytes(canonicalJson(s))
    layers.push({ mediaType: IN_TOTO_MEDIA_TYPE, digest: put.digest, size: put.size, annotations: { [PREDICATE_TYPE_ANNOTATION]: s.predicateType } })
  }
  const config: ImageConfig = {
    architecture: 'unknown',
    os: 'unknown',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  }
  const cfg = await blobs.putBytes(canonicalJson(config))
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers,
  }
  const m = await blobs.putBytes(canonicalJson(manifest))
  return { subject: image.manifestDigest as Digest, manifest, manifestDigest: m.digest, manifestSize: m.size }
}
