import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { Descriptor, ImageIndex } from '../oci/types.js'
import { ATTESTATION_ARTIFACT_TYPE, IN_TOTO_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION } from './in-toto.js'

/** Largest statement read (BuildKit caps each attestation at 40 MiB before wrapping). */
export const MAX_STATEMENT_BYTES = 48 << 20
/** Most attestation manifests, and statements per manifest, read from one index. */
const MAX_ATTESTATIONS = 256

export interface ReadAttestation {
  /** The image manifest the statements describe. */
  readonly subject: Digest
  /** That image's platform as the index lists it, when it does. */
  readonly platform?: string
  readonly manifestDigest: Digest
  /** `image` (config unknown/unknown, BuildKit ≤ 0.31) or `artifact` (artifactType and subject, BuildKit ≥ 0.32). */
  readonly shape: 'image' | 'artifact'
  readonly statements: readonly { readonly predicateType: string; readonly statement: { readonly predicate?: unknown; readonly [k: string]: unknown } }[]
}

/** Reads a blob by digest, refusing one larger than `max` bytes. */
export type BlobReader = (d: Descriptor, max: number) => Promise<Buffer>

/**
 * The attestations an index holds, in either manifest shape BuildKit writes: found by the index
 * descriptor's `vnd.docker.reference.type: attestation-manifest` (or the newer
 * `com.docker.reference.*`), or by a manifest's `artifactType`/`subject`; each in-toto layer
 * (`application/vnd.in-toto+json` with an `in-toto.io/predicate-type` annotation) read as a
 * statement. Other layers are skipped, as the layout says readers must.
 */
export async function readAttestations(index: ImageIndex, read: BlobReader): Promise<ReadAttestation[]> {
  const platformOf = new Map<string, string>()
  for (const d of index.manifests) {
    if (d.platform && d.platform.os !== 'unknown') platformOf.set(d.digest, `${d.platform.os}/${d.platform.architecture}${d.platform.variant ? `/${d.platform.variant}` : ''}`)
  }
  const out: ReadAttestation[] = []
  for (const d of index.manifests.slice(0, 4 * MAX_ATTESTATIONS)) {
    const a = d.annotations ?? {}
    const type = a['vnd.docker.reference.type'] ?? a['com.docker.reference.type']
    const annotated = a['vnd.docker.reference.digest'] ?? a['com.docker.reference.digest']
    if (type !== undefined && type !== 'attestation-manifest') continue
    if (type === undefined && d.platform?.os !== 'unknown' && (d as { artifactType?: string }).artifactType !== ATTESTATION_ARTIFACT_TYPE) continue
    let m: { artifactType?: string; subject?: { digest?: string }; layers?: Descriptor[] }
    try {
      m = JSON.parse((await read(d, 4 << 20)).toString('utf8')) as typeof m
    } catch {
      continue
    }
    const shape = m.artifactType === ATTESTATION_ARTIFACT_TYPE ? 'artifact' : 'image'
    const subject = (annotated ?? m.subject?.digest) as Digest | undefined
    if (!subject || (type === undefined && shape !== 'artifact')) continue
    const statements: ReadAttestation['statements'][number][] = []
    for (const l of (Array.isArray(m.layers) ? m.layers : []).slice(0, MAX_ATTESTATIONS)) {
      const predicateType = l.annotations?.[PREDICATE_TYPE_ANNOTATION]
      if (l.mediaType !== IN_TOTO_MEDIA_TYPE || !predicateType) continue
      let statement: ReadAttestation['statements'][number]['statement']
      try {
        statement = JSON.parse((await read(l, MAX_STATEMENT_BYTES)).toString('utf8')) as typeof statement
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e
        throw new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `attestation ${l.digest} is not a JSON in-toto statement`, { digest: l.digest, manifest: d.digest })
      }
      statements.push({ predicateType, statement })
    }
    const platform = platformOf.get(subject)
    out.push({ subject, ...(platform ? { platform } : {}), manifestDigest: d.digest as Digest, shape, statements })
    if (out.length >= MAX_ATTESTATIONS) break
  }
  return out
}
