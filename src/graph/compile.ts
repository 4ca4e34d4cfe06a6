import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import { digestOf } from '../util/canonical-json.js'
import { deepFreeze } from '../util/freeze.js'
import { BUILD_PLATFORM, type StageDef, type Step } from './stage.js'
import { fromText } from './instruction-text.js'
import { DEFAULT_OUTPUT, type AnyVertex, type Graph, type GraphOutput, type NodeKind, type NodeMeta, type SpecByKind } from './node.js'
import type { Platform } from '../oci/types.js'
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform } from '../oci/platform.js'
import { stageLabels, type StageLabels } from './stage-labels.js'

/** BuildKit's automatic platform ARGs: a stage that declares one without a default gets the build's value. */
const PLATFORM_ARGS = new Set(['TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT', 'BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT'])

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
  /** What a stage's {@link BUILD_PLATFORM} stands for. @default the host's */
  readonly buildPlatform?: Platform
}

export interface OnBuildLowering {
  /** Triggers in the config of a base image reference for a platform (absent: the graph has none); none when unknown. */
  readonly triggersOf?: (ref: string, platform?: Platform) => readonly string[]
  /** Trigger text (one instruction each, e.g. `RUN make`) as steps. */
  readonly lower: (triggers: readonly string[]) => readonly Step[]
}

/** The definition key of a vertex: its kind, spec, input keys and platform. Presentation (`meta`) stays out. */
export function vertexId<K extends NodeKind>(kind: K, spec: SpecByKind[K], inputs: readonly Digest[], platform?: Platform): Digest {
  return digestOf(platform ? { kind, spec, inputs, platform: formatPlatform(platform) } : { kind, spec, inputs })
}

/**
 * Flattens a stage (and every stage it reads from) into a graph with one output (`name`, by default
 * `default`). Identical sub-chains get identical ids and are stored once, so a stage used by two
 * others is built once.
 */
export function compileGraph(stage: StageDef, opts: CompileOptions & { readonly name?: string } = {}): Graph {
  const { name = DEFAULT_OUTPUT, ...rest } = opts
  return compileOutputs([{ name, stage, ...(opts.platform ? { platform: opts.platform } : {}) }], rest)
}

/** One output to compile: a target stage, for a platform when given (else `opts.platform`). */
export interface OutputTarget {
  readonly name: string
  readonly stage: StageDef
  readonly platform?: Platform
}

/**
 * Compiles several outputs into one graph (bake's targets, a multi-platform build's platforms): one
 * vertex table, so a step two outputs share for one platform is one vertex, and the same step for
 * two platforms is two (the platform is in the id). Each pair of name and platform once.
 */
export function compileOutputs(targets: readonly OutputTarget[], opts: CompileOptions = {}): Graph {
  if (targets.length === 0) throw new ImagesmithError(ErrorCodes.GRAPH_INVALID, 'a graph needs at least one output', {})
  const vertices = new Map<Digest, AnyVertex>()
  // One compiler per platform: its memo maps stages to that platform's vertices.
  const compilers = new Map<string, StageCompiler>()
  const seen = new Set<string>()
  const outputs: GraphOutput[] = []
  for (const t of targets) {
    const platform = t.platform ?? opts.platform
    const key = platform ? formatPlatform(platform) : ''
    const id = `${t.name}\u0000${key}`
    if (seen.has(id)) {
      throw new ImagesmithError(ErrorCodes.GRAPH_INVALID, `two outputs named ${JSON.stringify(t.name)}${platform ? ` for ${key}` : ''}`, { output: t.name, ...(platform ? { platform: key } : {}) })
    }
    seen.add(id)
    let compiler = compilers.get(key)
    if (!compiler) {
      compiler = new StageCompiler({ ...opts, ...(platform ? { platform } : {}) }, vertices)
      compilers.set(key, compiler)
    }
    outputs.push({ name: t.name, vertex: compiler.stage(t.stage), ...(platform ? { platform } : {}) })
  }
  const platforms = new Set(outputs.map((o) => (o.platform ? formatPlatform(o.platform) : '')))
  const only = platforms.size === 1 ? outputs[0]!.platform : undefined
  return deepFreeze({ vertices: [...vertices.values()], outputs, ...(only ? { platform: only } : {}) })
}

/**
 * The output key of a stage, as `compileGraph(stage, opts).outputs[0].vertex` gives it, from one shared
 * vertex table: stages that several others read are compiled once (printing a chain of n stages
 * compiled each one's whole chain again, n² vertices).
 */
export function stageKeyer(opts: CompileOptions = {}): (stage: StageDef) => Digest {
  const compiler = new StageCompiler(opts, new Map())
  return (stage) => compiler.stage(stage)
}

/** Where the compilation of one stage stands: its base, then step by step, each step's inputs one by one. */
interface Frame {
  readonly stage: StageDef
  /** -1 while the base is not in; then the index of the next step. */
  next: number
  steps: readonly Step[]
  head: Digest | undefined
  inputs: Digest[]
  /** The platform the stage's vertices are for (its own, its base stage's, else the output's). */
  platform: Platform | undefined
}

/**
 * Compiles stages into one vertex table. A loop over an explicit stack, never recursion: a chain of
 * 10,000 stages (`COPY --from` of the one before) is 10,000 levels deep. Vertices come out in the
 * order a depth-first walk adds them (a stage a step reads from right before that step).
 */
class StageCompiler {
  readonly #opts: CompileOptions
  readonly #buildArgs: Readonly<Record<string, string>>
  /** Shared by the compilers of one graph (one per platform): every vertex once, after its inputs. */
  readonly #vertices: Map<Digest, AnyVertex>
  readonly #memo = new Map<StageDef, Digest>()
  /** The platform each compiled stage's vertices are for: a stage FROM it inherits it. */
  readonly #platforms = new Map<StageDef, Platform | undefined>()
  readonly #labels: StageLabels

  constructor(opts: CompileOptions, vertices: Map<Digest, AnyVertex>) {
    this.#opts = opts
    this.#vertices = vertices
    this.#buildArgs = opts.buildArgs ?? {}
    this.#labels = stageLabels(opts.stageNames)
  }

  stage(root: StageDef): Digest {
    const done = this.#memo.get(root)
    if (done) return done
    const visiting = new Set<StageDef>()
    const stack: Frame[] = []
    const enter = (s: StageDef): void => {
      if (visiting.has(s)) throw new ImagesmithError(ErrorCodes.CYCLE, 'stage graph has a cycle')
      visiting.add(s)
      stack.push({ stage: s, next: -1, steps: [], head: undefined, inputs: [], platform: this.#opts.platform })
    }
    enter(root)
    frames: while (stack.length > 0) {
      const f = stack[stack.length - 1]!
      const s = f.stage
      if (f.next === -1) {
        if ('ref' in s.base) {
          f.platform = stagePlatform(s, this.#opts) ?? f.platform
          f.head = this.#source(s.base.ref, f.platform)
        } else {
          const base = this.#memo.get(s.base.stage)
          if (base === undefined) {
            enter(s.base.stage)
            continue
          }
          f.platform = stagePlatform(s, this.#opts) ?? this.#platforms.get(s.base.stage)
          f.head = this.#add('config', { op: 'stage' }, [base], this.#labels.stageEntry(s, s.base.stage), f.platform)
        }
        f.steps = [...this.#triggerSteps(s, f.platform), ...s.steps]
        f.next = 0
      }
      while (f.next < f.steps.length) {
        const step = f.steps[f.next]!
        while (f.inputs.length < step.deps.length) {
          const dep = step.deps[f.inputs.length]!
          if ('ref' in dep) f.inputs.push(this.#source(dep.ref, f.platform))
          else {
            const key = this.#memo.get(dep.stage)
            if (key === undefined) {
              enter(dep.stage)
              continue frames
            }
            f.inputs.push(key)
          }
        }
        let spec = step.spec
        if (step.kind === 'config' && (spec as SpecByKind['config']).op === 'arg') {
          const argSpec = spec as Extract<SpecByKind['config'], { op: 'arg' }>
          const buildArgs = this.#buildArgs
          spec = {
            op: 'arg',
            args: argSpec.args.map((a) => {
              if (Object.hasOwn(buildArgs, a.name)) return { name: a.name, value: buildArgs[a.name] }
              // A platform ARG declared without a default takes the build's values, as BuildKit's
              // automatic ARGs: TARGETARCH in a BUILD_PLATFORM stage is the target's (cross-compiling).
              const auto = a.value === undefined ? this.#platformArg(a.name) : undefined
              return auto === undefined ? a : { ...a, value: auto }
            }),
          }
        }
        f.head = this.#add(step.kind, spec, [f.head!, ...f.inputs], this.#labels.stepMeta(s, step), f.platform)
        f.inputs = []
        f.next++
      }
      visiting.delete(s)
      this.#memo.set(s, f.head!)
      this.#platforms.set(s, f.platform)
      stack.pop()
    }
    return this.#memo.get(root)!
  }

  #platformArg(name: string): string | undefined {
    if (!PLATFORM_ARGS.has(name)) return undefined
    const target = this.#opts.platform ?? hostPlatform()
    const build = this.#opts.buildPlatform ?? hostPlatform()
    const [p, field] = name.startsWith('TARGET') ? [target, name.slice(6)] : [build, name.slice(5)]
    if (field === 'PLATFORM') return formatPlatform(p)
    return field === 'OS' ? p.os : field === 'ARCH' ? p.architecture : (p.variant ?? '')
  }

  #add<K extends NodeKind>(kind: K, spec: SpecByKind[K], inputs: readonly Digest[], meta: NodeMeta, platform: Platform | undefined): Digest {
    const id = vertexId(kind, spec, inputs, platform)
    if (!this.#vertices.has(id)) {
      this.#vertices.set(id, deepFreeze({ id, kind, spec, inputs: [...inputs], ...(platform ? { platform } : {}), meta: { ...meta } }) as unknown as AnyVertex)
    }
    return id
  }

  #source(ref: string, platform: Platform | undefined): Digest {
    return this.#add('source', { ref }, [], { description: fromText(ref) }, platform)
  }

  #triggerSteps(s: StageDef, platform: Platform | undefined): readonly Step[] {
    const lowering = this.#opts.onBuild
    const triggers =
      'ref' in s.base
        ? (lowering?.triggersOf?.(s.base.ref, platform) ?? [])
        : s.base.stage.steps.flatMap((st) => (st.kind === 'config' && (st.spec as SpecByKind['config']).op === 'onbuild' ? [(st.spec as { instruction: string }).instruction] : []))
    if (triggers.length === 0) return []
    if (!lowering) {
      throw new ImagesmithError(ErrorCodes.GRAPH_INVALID, 'the base has ONBUILD triggers but nothing to lower them with', { triggers })
    }
    return lowering.lower(triggers)
  }
}

/**
 * The platform a stage says it is for (`FROM --platform=…`), {@link BUILD_PLATFORM} read as
 * `opts.buildPlatform` (else the host's); undefined when it says none (it inherits one).
 */
export function stagePlatform(stage: StageDef, opts: Pick<CompileOptions, 'buildPlatform'> = {}): Platform | undefined {
  if (stage.platform === undefined) return undefined
  return normalizePlatform(stage.platform === BUILD_PLATFORM ? (opts.buildPlatform ?? hostPlatform()) : parsePlatform(stage.platform))
}
