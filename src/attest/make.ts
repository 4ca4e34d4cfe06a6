import type { AttestationManifest, IndexImage } from '../artifacts/artifact.js'
import { formatPlatform } from '../oci/platform.js'
import type { Digest } from '../oci/media-types.js'
import type { BlobStore } from '../store/blob-store.js'
import { SLSA_V02_PREDICATE, SPDX_PREDICATE, STATEMENT_V01, statementSubjects, writeAttestationManifest, type Statement } from './in-toto.js'
import type { ResolvedAttest } from './options.js'
import { slsaProvenance, type DefinitionVertex, type ProvenanceInput } from './provenance.js'
import { imageSbom } from './spdx.js'

export interface AttestInput {
  readonly attest: ResolvedAttest
  readonly blobs: BlobStore
  readonly images: readonly IndexImage[]
  /** The build's tags, as normalised references (`docker.io/library/app:1`): statement subjects and the SBOM's name. */
  readonly names: readonly string[]
  readonly tool: string
  /** Provenance facts shared by every platform; materials are per platform. */
  readonly provenance: Omit<ProvenanceInput, 'mode' | 'builderId' | 'source' | 'target' | 'bases' | 'vertices'> & {
    readonly bases: readonly { readonly ref: string; readonly digest?: Digest }[]
    readonly vertices: readonly DefinitionVertex[]
  }
  readonly signal?: AbortSignal
}

/**
 * One attestation manifest per platform image: its SBOM (of that image's filesystem) and/or its
 * provenance (materials named for that platform; in max mode the vertices built for it), each an
 * in-toto statement whose subject is the image's manifest.
 */
export async function attestImages(input: AttestInput): Promise<AttestationManifest[]> {
  const out: AttestationManifest[] = []
  for (const { platform, image } of input.images) {
    const p = formatPlatform(platform)
    const subject = statementSubjects(image, input.names, p)
    const statements: Statement[] = []
    if (input.attest.sbom) {
      const predicate = await imageSbom(input.blobs, {
        image, name: input.names[0] ?? image.manifestDigest, created: image.config.created ?? '1970-01-01T00:00:00Z', tool: input.tool, ...(input.signal ? { signal: input.signal } : {}),
      })
      statements.push({ _type: STATEMENT_V01, subject, predicateType: SPDX_PREDICATE, predicate })
    }
    if (input.attest.provenance) {
      const prov = input.provenance
      const predicate = await slsaProvenance({
        ...prov,
        mode: input.attest.provenance,
        ...(input.attest.builderId ? { builderId: input.attest.builderId } : {}),
        ...(input.attest.source ? { source: input.attest.source } : {}),
        ...(input.attest.target ? { target: input.attest.target } : {}),
        bases: prov.bases.map((b) => ({ ...b, platform: p })),
        // A multi-platform build's definition per image: the vertices built for its platform (and those for none).
        vertices: prov.vertices.filter((v) => v.platform === undefined || v.platform === p),
      })
      statements.push({ _type: STATEMENT_V01, subject, predicateType: SLSA_V02_PREDICATE, predicate })
    }
    out.push(await writeAttestationManifest(input.blobs, image, statements))
  }
  return out
}
