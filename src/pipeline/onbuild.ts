import type { StageDef } from '../graph/stage.js'
import type { BaseImage } from '../solver/types.js'

/** ONBUILD trigger text as steps: the Dockerfile parser's, which the pipeline hands to graph(). */
export { lowerTriggers } from '../dockerfile/triggers.js'

/**
 * Reads the config of every image a stage (or a stage it reads from) starts FROM, before the graph is
 * compiled, and returns their ONBUILD triggers by reference. The graph then runs them right after
 * those FROMs, as Docker does (graph/compile). The bases are read in parallel; `onFailure` names the
 * reference whose read failed first, so the failure is reported against its FROM.
 */
export async function baseTriggers(
  stage: StageDef,
  resolve: (ref: string) => Promise<BaseImage>,
  onFailure: (ref: string) => void = () => {},
): Promise<ReadonlyMap<string, readonly string[]>> {
  const refs = new Set<string>()
  // Depth-first with an explicit stack (a chain of 10,000 stages is 10,000 deep), refs in the order
  // a recursive walk finds them.
  const seen = new Set<StageDef>([stage])
  const stack: { s: StageDef; reads: StageDef[]; next: number }[] = []
  const enter = (s: StageDef): void => {
    const reads: StageDef[] = []
    if ('ref' in s.base) {
      if (s.base.ref !== 'scratch') refs.add(s.base.ref)
    } else reads.push(s.base.stage)
    for (const step of s.steps) for (const d of step.deps) if ('stage' in d) reads.push(d.stage)
    stack.push({ s, reads, next: 0 })
  }
  enter(stage)
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!
    if (f.next === f.reads.length) {
      stack.pop()
      continue
    }
    const next = f.reads[f.next++]!
    if (seen.has(next)) continue
    seen.add(next)
    enter(next)
  }
  let failed = false
  const read = async (ref: string): Promise<[string, readonly string[]]> => {
    try {
      return [ref, [...((await resolve(ref)).config.config?.OnBuild ?? [])]]
    } catch (e) {
      if (!failed) onFailure(ref)
      failed = true
      throw e
    }
  }
  const all = await Promise.all([...refs].map(read))
  return new Map(all.filter(([, t]) => t.length > 0))
}
