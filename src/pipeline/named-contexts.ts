/**
 * Named build contexts (buildx `--build-context NAME=VALUE`, build option `buildContexts`): a name
 * that FROM, COPY --from or RUN --mount=from= uses reads the context instead, and a stage of that
 * name is replaced by it (BuildKit's dockerfile2llb: `NamedContext` before the stage or the image).
 */
import { image } from '../builder/image-builder.js'
import { contextName, type NamedContext } from '../context/named-contexts.js'
import type { StageDef, Step, StepInput } from '../graph/stage.js'
import { deepFreeze } from '../util/freeze.js'

export { contextName, namedContexts, resolveBuildContext, type NamedContext } from '../context/named-contexts.js'

/**
 * The stage with every use of a named context replaced: a base or input reference of that name,
 * and a stage whose name (`stageNames`: a Dockerfile's `AS`, a script's record key) is that name. A
 * directory read by COPY --from is read in place (`copy()`'s `context`); as a FROM or a mount
 * source it is a stage made of its files. `replaced` maps each rewritten stage to its new one.
 */
export function applyNamedContexts(
  root: StageDef,
  contexts: ReadonlyMap<string, NamedContext>,
  stageNames: ReadonlyMap<StageDef, string> = new Map(),
): { stage: StageDef; replaced: ReadonlyMap<StageDef, StageDef> } {
  const memo = new Map<StageDef, StageDef>()
  const lookup = (name: string | undefined): NamedContext | undefined => {
    if (name === undefined || name === 'scratch' || /^\d+$/.test(name)) return undefined
    try {
      return contexts.get(contextName(name))
    } catch {
      return undefined // not an image name (`oci:…`, `local:…`): never a named context
    }
  }
  const contextStage = (c: NamedContext): StageDef =>
    c.kind === 'stage' ? c.stage : c.kind === 'image' ? image().from(c.ref).toStage() : image().copy('.', '/', { context: c.path }).toStage()
  const named = (dep: StepInput): NamedContext | undefined => ('ref' in dep ? lookup(dep.ref) : lookup(stageNames.get(dep.stage)))
  const input = (dep: StepInput): StepInput => {
    const c = named(dep)
    if (c) return c.kind === 'image' ? { ref: c.ref } : { stage: contextStage(c) }
    return 'ref' in dep ? dep : { stage: walk(dep.stage) }
  }
  const step = (s: Step): Step => {
    const c = s.kind === 'copy' && s.deps.length === 1 ? named(s.deps[0]!) : undefined
    if (c?.kind === 'dir') return { ...s, spec: { ...(s.spec as Step<'copy'>['spec']), fromInput: false, context: c.path }, deps: [] }
    const deps = s.deps.map(input)
    return deps.every((d, i) => d === s.deps[i]) ? s : { ...s, deps }
  }
  const walk = (s: StageDef): StageDef => {
    const done = memo.get(s)
    if (done) return done
    const self = lookup(stageNames.get(s))
    let out: StageDef
    if (self) out = contextStage(self)
    else {
      const base = 'ref' in s.base ? input(s.base) : { stage: walk(s.base.stage) }
      const steps = s.steps.map(step)
      const same = (('ref' in s.base && 'ref' in base && base.ref === s.base.ref) || ('stage' in s.base && 'stage' in base && base.stage === s.base.stage)) && steps.every((x, i) => x === s.steps[i])
      out = same ? s : deepFreeze({ base, steps })
    }
    memo.set(s, out)
    return out
  }
  const stage = walk(root)
  return { stage, replaced: new Map([...memo].filter(([a, b]) => a !== b)) }
}
