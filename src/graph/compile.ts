import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import { digestOf } from '../util/canonical-json.js'
import { deepFreeze } from '../util/freeze.js'
import type { StageDef, Step, StepInput } from './stage.js'
import { fromText } from './instruction-text.js'
import type { AnyVertex, Graph, NodeKind, NodeMeta, SpecByKind } from './node.js'
import type { Platform } from '../oci/types.js'
import { formatPlatform } from '../oci/platform.js'
import { stageLabels } from './stage-labels.js'

export interface CompileOptions {
  /** Values for ARGs; an ARG without a value here keeps its default. */
  readonly buildArgs?: Readonly<Record<string, string>>
  /**
   * ONBUILD triggers, which run right after the FROM of a base that carries them, as Docker runs them.
   * A base stage's triggers are its own ONBUILD steps; an image reference's are in its config, which
   * only the pipeline knows (it reads base configs before compiling): `triggersOf`. The graph cannot
   * parse Dockerfile text, so the layer that can supplies `lower`.
   */
  readonly onBuild?: OnBuildLowering
  /** Stage names by stage (a Dockerfile's `AS` names, a build script's record keys): kept in each step's meta. */
  readonly stageNames?: ReadonlyMap<StageDef, string>
  /** The platform every vertex is built for: in each vertex and its id. Without it the ids leave the platform out. */
  readonly platform?: Platform
}

export interface OnBuildLowering {
  /** Triggers in the config of a base image reference; none when unknown. */
  readonly triggersOf?: (ref: string) => readonly string[]
  /** Trigger text (one instruction each, e.g. `RUN make`) as steps. */
  readonly lower: (triggers: readonly string[]) => readonly Step[]
}

/** The definition key of a vertex: its kind, spec, input keys and platform. Presentation (`meta`) stays out. */
export function vertexId<K extends NodeKind>(kind: K, spec: SpecByKind[K], inputs: readonly Digest[], platform?: Platform): Digest {
  return digestOf(platform ? { kind, spec, inputs, platform: formatPlatform(platform) } : { kind, spec, inputs })
}

/**
 * Flattens a stage (and every stage it reads from) into a graph. Identical sub-chains get identical
 * ids and are stored once, so a stage used by two others is built once.
 */
export function compileGraph(stage: StageDef, opts: CompileOptions = {}): Graph {
  const buildArgs = opts.buildArgs ?? {}
  const vertices = new Map<Digest, AnyVertex>()
  const memo = new Map<StageDef, Digest>()
  const visiting = new Set<StageDef>()
  const labels = stageLabels(opts.stageNames)
  const platform = opts.platform

  const add = <K extends NodeKind>(kind: K, spec: SpecByKind[K], inputs: readonly Digest[], meta: NodeMeta): Digest => {
    const id = vertexId(kind, spec, inputs, platform)
    if (!vertices.has(id)) {
      vertices.set(id, deepFreeze({ id, kind, spec, inputs: [...inputs], ...(platform ? { platform } : {}), meta: { ...meta } }) as unknown as AnyVertex)
    }
    return id
  }

  const source = (ref: string): Digest => add('source', { ref }, [], { description: fromText(ref) })

  const input = (dep: StepInput): Digest => ('ref' in dep ? source(dep.ref) : compileStage(dep.stage))

  const compileStage = (s: StageDef): Digest => {
    const done = memo.get(s)
    if (done) return done
    if (visiting.has(s)) throw new ImagesmithError(ErrorCodes.CYCLE, 'stage graph has a cycle')
    visiting.add(s)
    let head: Digest =
      'ref' in s.base ? source(s.base.ref) : add('config', { op: 'stage' }, [compileStage(s.base.stage)], labels.stageEntry(s, s.base.stage))
    for (const step of [...triggerSteps(s), ...s.steps]) {
      let spec = step.spec
      if (step.kind === 'config' && (spec as SpecByKind['config']).op === 'arg') {
        const argSpec = spec as Extract<SpecByKind['config'], { op: 'arg' }>
        spec = {
          op: 'arg',
          args: argSpec.args.map((a) => (Object.hasOwn(buildArgs, a.name) ? { name: a.name, value: buildArgs[a.name] } : a)),
        }
      }
      head = add(step.kind, spec, [head, ...step.deps.map(input)], labels.stepMeta(s, step))
    }
    visiting.delete(s)
    memo.set(s, head)
    return head
  }

  const triggerSteps = (s: StageDef): readonly Step[] => {
    const lowering = opts.onBuild
    const triggers =
      'ref' in s.base
        ? (lowering?.triggersOf?.(s.base.ref) ?? [])
        : s.base.stage.steps.flatMap((st) => (st.kind === 'config' && (st.spec as SpecByKind['config']).op === 'onbuild' ? [(st.spec as { instruction: string }).instruction] : []))
    if (triggers.length === 0) return []
    if (!lowering) {
      throw new ImagesmithError(ErrorCodes.GRAPH_INVALID, 'the base has ONBUILD triggers but nothing to lower them with', { triggers })
    }
    return lowering.lower(triggers)
  }

  const output = compileStage(stage)
  return deepFreeze({ vertices: [...vertices.values()], output, ...(platform ? { platform } : {}) })
}
