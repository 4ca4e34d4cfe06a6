import { randomUUID } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import type { Digest } from '../oci/media-types.js'
import type { GitSource } from './git-commit.js'

/** Our `buildType`: what `invocation` and `buildConfig` hold is defined by imagesmith's provenance format v1. */
export const BUILD_TYPE = 'https://imagesmith.dev/provenance/build/v1'
export const DEFAULT_BUILDER_ID = 'https://imagesmith.dev/builder/local'
/** Most bytes of the Dockerfile or script a max-mode provenance carries. */
export const MAX_SOURCE_BYTES = 1 << 20

/** A base image the build read: its reference and, for a registry base, the digest it resolved to. */
export interface BaseMaterial {
  readonly ref: string
  readonly digest?: Digest
  readonly platform: string
}

/** One step of the build definition (max mode): never the values of secrets, which no vertex holds. */
export interface DefinitionVertex {
  readonly id: Digest
  readonly kind: string
  readonly description: string
  readonly inputs: readonly Digest[]
  readonly stage?: string
  readonly platform?: string
  readonly cacheKey?: Digest
}

export interface ProvenanceInput {
  readonly mode: 'min' | 'max'
  readonly builderId?: string
  /** `dockerfile`, `script` or `api`: what described the build. */
  readonly frontend: string
  readonly source?: string
  readonly target?: string
  readonly platforms: readonly string[]
  readonly hostPlatform: string
  readonly buildArgs: Readonly<Record<string, string>>
  readonly labels: Readonly<Record<string, string>>
  /** Secret ids only (max mode lists them, as BuildKit does); values never reach here. */
  readonly secretIds: readonly string[]
  readonly sshIds: readonly string[]
  readonly bases: readonly BaseMaterial[]
  readonly git?: GitSource
  readonly vertices: readonly DefinitionVertex[]
  readonly startedOn: string
  readonly finishedOn: string
  readonly reproducible: boolean
}

/** A base reference as a purl, as BuildKit writes materials: `pkg:docker/<name>@<tag>?platform=<os%2Farch>`. */
export function dockerPurl(ref: string, platform: string): string {
  const q = `platform=${encodeURIComponent(platform)}`
  const at = ref.indexOf('@')
  if (at >= 0) return `pkg:docker/${ref.slice(0, at)}?digest=${encodeURIComponent(ref.slice(at + 1))}&${q}`
  const colon = ref.lastIndexOf(':')
  const tagged = colon > ref.lastIndexOf('/')
  return `pkg:docker/${tagged ? ref.slice(0, colon) : ref}@${tagged ? ref.slice(colon + 1) : 'latest'}?${q}`
}

/**
 * SLSA provenance v0.2 (the version most readers expect) of one build, as BuildKit fills it:
 * materials = every base image (by digest when it came from a registry) and the context's git
 * commit; invocation parameters = frontend, target, platforms and, in max mode only, build args,
 * labels and secret/ssh ids (min leaves them out, as BuildKit scrubs `build-arg:*`/`label:*`);
 * max mode adds `buildConfig`, the graph's vertices with their cache keys and the source. The
 * metadata times are the build's real times: the provenance records the invocation, not the image.
 */
export async function slsaProvenance(input: ProvenanceInput): Promise<Record<string, unknown>> {
  const max = input.mode === 'max'
  const materials: Record<string, unknown>[] = input.bases.map((b) =>
    b.digest ? { uri: dockerPurl(b.ref, b.platform), digest: { sha256: b.digest.slice(7) } } : { uri: b.ref })
  if (input.git) materials.push({ uri: input.git.url ?? 'git', digest: { [input.git.commit.length === 40 ? 'sha1' : 'sha256']: input.git.commit } })
  const parameters: Record<string, unknown> = {
    frontend: input.frontend,
    ...(input.target ? { target: input.target } : {}),
    platforms: [...input.platforms],
    locals: [{ name: 'context' }],
    ...(max
      ? {
          args: { ...input.buildArgs },
          labels: { ...input.labels },
          secrets: input.secretIds.map((id) => ({ id })),
          ssh: input.sshIds.map((id) => ({ id })),
        }
      : {}),
  }
  const text = max && input.source ? await sourceText(input.source) : undefined
  return {
    builder: { id: input.builderId ?? DEFAULT_BUILDER_ID },
    buildType: BUILD_TYPE,
    invocation: {
      configSource: {
        ...(input.git?.url ? { uri: input.git.url, digest: { sha1: input.git.commit } } : {}),
        ...(input.source ? { entryPoint: input.source } : {}),
      },
      parameters,
      environment: { platform: input.hostPlatform },
    },
    ...(max
      ? {
          buildConfig: {
            vertices: input.vertices.map((v) => ({ ...v, inputs: [...v.inputs] })),
            ...(text !== undefined ? { source: { path: input.source, text } } : {}),
          },
        }
      : {}),
    metadata: {
      buildInvocationID: randomUUID(),
      buildStartedOn: input.startedOn,
      buildFinishedOn: input.finishedOn,
      completeness: { parameters: max, environment: true, materials: input.bases.every((b) => b.digest !== undefined) },
      reproducible: input.reproducible,
    },
    materials,
  }
}

async function sourceText(path: string): Promise<string | undefined> {
  try {
    const h = await fsp.open(path, 'r')
    try {
      const buf = Buffer.alloc(MAX_SOURCE_BYTES)
      const { bytesRead } = await h.read(buf, 0, MAX_SOURCE_BYTES, 0)
      return buf.subarray(0, bytesRead).toString('utf8')
    } finally {
      await h.close()
    }
  } catch {
    return undefined
  }
}
