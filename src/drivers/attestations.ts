import type { AttestationManifest, IndexImage } from '../artifacts/artifact.js'
import { gitSourceOf } from '../attest/git-commit.js'
import { attestImages } from '../attest/make.js'
import type { DefinitionVertex } from '../attest/provenance.js'
import type { Graph as BuildGraph } from '../graph/node.js'
import { formatPlatform, hostPlatform } from '../oci/platform.js'
import type { Digest } from '../oci/media-types.js'
import { parseImageName } from '../reference/reference.js'
import type { VertexRecord } from '../solver/types.js'
import type { Store } from '../store/store.js'
import type { DriverRequest } from './driver.js'

/** Bases that are files on this machine (no registry digest to name them by). */
const LOCAL_BASE = /^(?:oci-archive|oci|oci-layout|docker-archive):/

/**
 * The build's attestation manifests, one per platform image, when `attest` asks for any: the
 * SBOM of each image, the provenance of the build (bases by digest, the context's git commit, and
 * in max mode the args, labels, secret ids and the vertices with their cache keys).
 */
export async function attestationsFor(
  req: DriverRequest,
  built: { store: Store; graph: BuildGraph; vertices: readonly VertexRecord[]; images: readonly IndexImage[]; bases: readonly { ref: string; digest: Digest }[]; startedOn: string },
): Promise<AttestationManifest[]> {
  const { opts, resolved, tags } = req
  const attest = resolved.attest
  if (!attest) return []
  const keys = new Map(built.vertices.map((v) => [v.vertex, v.key]))
  const vertices: DefinitionVertex[] = built.graph.vertices.map((v) => ({
    id: v.id,
    kind: v.kind,
    description: v.meta.description,
    inputs: v.inputs,
    ...(v.meta.stage ? { stage: v.meta.stage } : {}),
    ...(v.platform ? { platform: formatPlatform(v.platform) } : {}),
    ...(keys.get(v.id) ? { cacheKey: keys.get(v.id)! } : {}),
  }))
  const localBases = [...new Set(built.graph.vertices.flatMap((v) => (v.kind === 'source' && LOCAL_BASE.test((v.spec as { ref: string }).ref) ? [(v.spec as { ref: string }).ref as string] : [])))]
  const source = attest.source
  return attestImages({
    attest,
    blobs: built.store.blobs,
    images: built.images,
    names: tags.map((t) => parseImageName(t).full),
    tool: 'imagesmith',
    provenance: {
      frontend: source === undefined ? 'api' : /(?:^|[/.])(?:Dockerfile|Containerfile)$|\.dockerfile$/i.test(source) ? 'dockerfile' : 'script',
      platforms: resolved.platforms.map(formatPlatform),
      hostPlatform: formatPlatform(hostPlatform()),
      buildArgs: opts.buildArgs ?? {},
      labels: req.labels ?? {},
      secretIds: Object.keys(req.secrets).sort(),
      sshIds: Object.keys(resolved.ssh).sort(),
      bases: [...built.bases, ...localBases.map((ref) => ({ ref }))],
      ...(await gitSourceOf(resolved.contextDir).then((git) => (git ? { git } : {}))),
      vertices,
      startedOn: built.startedOn,
      finishedOn: new Date().toISOString(),
      reproducible: resolved.clampRunMtimes,
    },
    ...(opts.signal ? { signal: opts.signal } : {}),
  })
}
