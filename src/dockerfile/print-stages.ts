import { stageKeyer } from '../graph/compile.js'
import type { StageDef } from '../graph/stage.js'
import type { Digest } from '../oci/media-types.js'
import { lowerTriggers } from './triggers.js'

export interface StageEntry {
  readonly def: StageDef
  /** `''` for a lone target stage, which needs no name. */
  name: string
}

/**
 * The stages a target reads from, each once, dependencies first (Docker needs a stage defined
 * before `--from` or `FROM` names it), the target last. Two stage definitions with the same
 * vertex key are one stage. Names: the stage's own (the importer keeps `AS name`), else
 * `stage-N`, or `names(def)` when the caller has better ones.
 */
export function collectStages(
  target: StageDef,
  names?: (def: StageDef) => string | undefined,
  others: readonly StageDef[] = [],
): { order: StageEntry[]; byDef: Map<StageDef, StageEntry> } {
  const order: StageEntry[] = []
  const byDef = new Map<StageDef, StageEntry>()
  const byKey = new Map<Digest, StageEntry>()
  // The keys graph() gives, ONBUILD triggers of base stages included.
  const keyOf = stageKeyer({ onBuild: { lower: lowerTriggers } })
  // Dependencies first, with an explicit stack: a chain of 10,000 stages is 10,000 levels deep.
  const visit = (root: StageDef): void => {
    const stack: { def: StageDef; reads: StageDef[] | undefined; next: number }[] = [{ def: root, reads: undefined, next: 0 }]
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!
      const def = f.def
      if (!f.reads) {
        if (byDef.has(def)) {
          stack.pop()
          continue
        }
        const same = byKey.get(keyOf(def))
        if (same) {
          byDef.set(def, same)
          stack.pop()
          continue
        }
        f.reads = []
        if ('stage' in def.base) f.reads.push(def.base.stage)
        for (const step of def.steps) for (const dep of step.deps) if ('stage' in dep) f.reads.push(dep.stage)
      }
      if (f.next < f.reads.length) {
        stack.push({ def: f.reads[f.next++]!, reads: undefined, next: 0 })
        continue
      }
      const entry: StageEntry = { def, name: '' }
      byDef.set(def, entry)
      byKey.set(keyOf(def), entry)
      order.push(entry)
      stack.pop()
    }
  }
  // Other stages (a Dockerfile's stages the target does not read) keep their file order.
  for (const def of others) visit(def)
  visit(target)

  const own = (def: StageDef) => names?.(def) ?? stageName(def)
  const taken = new Set(order.map((e) => own(e.def)).filter((n): n is string => n !== undefined))
  let n = 0
  for (const e of order) {
    const name = own(e.def)
    if (name !== undefined) e.name = name
    // The target needs no name: nothing refers to it.
    else if (e.def !== target) {
      do e.name = `stage-${++n}`
      while (taken.has(e.name))
    }
  }
  return { order, byDef }
}

/** A stage's own name, when the importer kept the Dockerfile's `AS name`. */
export function stageName(def: StageDef): string | undefined {
  const name = (def as { readonly name?: unknown }).name
  return typeof name === 'string' && name !== '' ? name : undefined
}
