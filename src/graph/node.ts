import type { Digest } from '../oci/media-types.js'
import type { Platform } from '../oci/types.js'
import type { AddSpec } from './nodes/add-node.js'
import type { ConfigSpec } from './nodes/config-node.js'
import type { CopySpec } from './nodes/copy-node.js'
import type { RunSpec } from './nodes/run-node.js'
import type { SourceSpec } from './nodes/source-node.js'

/** Specs by kind. Adding a kind here makes every `Record<NodeKind, …>` dispatch table fail to compile until it is handled. */
export interface SpecByKind {
  source: SourceSpec
  copy: CopySpec
  add: AddSpec
  run: RunSpec
  config: ConfigSpec
}

export type NodeKind = keyof SpecByKind

/** Presentation only: never part of a vertex digest (BuildKit's VertexOptions). */
export interface NodeMeta {
  readonly description: string
  /** The name of the stage the step belongs to, when the build names its stages (`noCacheFilter`); never in the id. */
  readonly stage?: string
  /** Where a step imported from a Dockerfile was written (file name and 1-based line), for errors; never in the id. */
  readonly source?: { readonly file: string; readonly line: number }
  /** What `inputs[1…]` are called where the build names them (`COPY --from=build`): a miss reason names the one that changed. */
  readonly inputs?: readonly InputName[]
}

/** A stage (by its name, or its position when unnamed) or an image reference a step reads from. */
export interface InputName {
  readonly kind: 'stage' | 'image'
  readonly name: string
}

/**
 * One vertex of the build graph: frozen plain data. `id` is the definition key:
 * sha256 of the canonical JSON of `{ kind, spec, inputs }` (and `platform` when set); `meta` is left out.
 * `inputs[0]` is the state the op applies to (absent for `source`); further inputs are other
 * stages the op reads from (e.g. `COPY --from`).
 */
export interface Vertex<K extends NodeKind = NodeKind> {
  readonly id: Digest
  readonly kind: K
  readonly spec: SpecByKind[K]
  readonly inputs: readonly Digest[]
  /**
   * The platform the vertex is built for (BuildKit keeps one per vertex): part of `id`, so the same
   * step for two platforms is two vertices, and executors see it as `ExecContext.platform`.
   * Absent in a graph compiled without a platform: the build's platform applies.
   */
  readonly platform?: Platform
  readonly meta: NodeMeta
}

export type AnyVertex = { [K in NodeKind]: Vertex<K> }[NodeKind]

/**
 * What a build asks of a graph: one image per target and platform (`bake` builds many targets, a
 * multi-platform build one per platform). Outputs may share vertices; a solve runs each once.
 */
export interface GraphOutput {
  /** The target's name (`default` for a single builder); with `platform`, unique in its graph. */
  readonly name: string
  /** The vertex whose state is the output's image. */
  readonly vertex: Digest
  /** The platform the output's vertices were compiled for, when one was given. */
  readonly platform?: Platform
}

/** The name of a graph's output when the build names none (one builder, one image). */
export const DEFAULT_OUTPUT = 'default'

/**
 * A flat, topologically ordered graph (every vertex after its inputs) with its named outputs: at
 * least one, each pair of name and platform once.
 */
export interface Graph {
  readonly vertices: readonly AnyVertex[]
  readonly outputs: readonly GraphOutput[]
  /** The platform every vertex was compiled for, when all were compiled for one given platform. */
  readonly platform?: Platform
}
