import { dockerfileText, fromText } from './instruction-text.js'
import type { InputName, NodeMeta } from './node.js'
import type { StageDef, Step, StepInput } from './stage.js'

/**
 * Presentation of a build whose stages have names (a Dockerfile's `AS` names, a build script's
 * record keys): which stage each step belongs to, and step descriptions that say `--from=build`
 * where the builder could only write `<stage>`. Never part of a vertex id.
 *
 * A step belongs to the named stage that defines it. A build script's `web = base.copy(…)` holds
 * base's steps (the same frozen objects) before its own: those stay base's, so `noCacheFilter:
 * ['base']` rebuilds them wherever they are used, as BuildKit's `--no-cache-filter` does.
 */
export interface StageLabels {
  /** The meta of `step` compiled as part of stage `s`. */
  stepMeta(s: StageDef, step: Step): NodeMeta
  /** The meta of the vertex that enters stage `s` from another stage (`FROM base AS web`). */
  stageEntry(s: StageDef, base: StageDef): NodeMeta
}

/** Stage → name, from a record of stages by name; a name wins over a position (`0`, `1`, as fromDockerfile also keys its stages). */
export function stageNamesOf(stages: Readonly<Record<string, { toStage(): StageDef }>>): Map<StageDef, string> {
  const names = new Map<StageDef, string>()
  for (const [name, b] of Object.entries(stages)) {
    const prev = names.get(b.toStage())
    if (prev === undefined || /^\d+$/.test(prev)) names.set(b.toStage(), name)
  }
  return names
}

export function stageLabels(names: ReadonlyMap<StageDef, string> | undefined): StageLabels {
  if (!names || names.size === 0) {
    return {
      stepMeta: (_s, step) => step.meta,
      stageEntry: () => ({ description: 'FROM <stage>' }),
    }
  }
  // Each step object → the named stage with the fewest steps that holds it: the one that added it.
  const owner = new Map<Step, { name: string; size: number }>()
  for (const [def, name] of names) {
    for (const step of def.steps) {
      const seen = owner.get(step)
      if (!seen || def.steps.length < seen.size) owner.set(step, { name, size: def.steps.length })
    }
  }
  const nameOf = (def: StageDef): string | undefined => {
    const direct = names.get(def)
    if (direct !== undefined) return direct
    const last = def.steps[def.steps.length - 1]
    return last ? owner.get(last)?.name : undefined
  }
  const inputName = (d: StepInput): InputName => ('ref' in d ? { kind: 'image', name: d.ref } : { kind: 'stage', name: nameOf(d.stage) ?? '<stage>' })
  return {
    stepMeta(s, step) {
      const stage = owner.get(step)?.name ?? names.get(s)
      const named = step.deps.some((d) => 'stage' in d)
      const description = named ? dockerfileText(step, { strict: false, input: (d) => inputName(d).name }) : step.meta.description
      return {
        ...step.meta,
        description,
        ...(stage !== undefined ? { stage } : {}),
        ...(step.deps.length > 0 ? { inputs: step.deps.map(inputName) } : {}),
      }
    },
    stageEntry(s, base) {
      const stage = names.get(s)
      return { description: fromText(nameOf(base) ?? '<stage>'), ...(stage !== undefined ? { stage } : {}) }
    },
  }
}
