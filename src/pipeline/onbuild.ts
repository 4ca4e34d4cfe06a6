import type { StageDef } from '../graph/stage.js'
import type { BaseImage } from '../solver/types.js'

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
  const seen = new Set<StageDef>()
  const walk = (s: StageDef): void => {
    if (seen.has(s)) return
    seen.add(s)
    if ('ref' in s.base) {
      if (s.base.ref !== 'scratch') refs.add(s.base.ref)
    } else walk(s.base.stage)
    for (const step of s.steps) for (const d of step.deps) if ('stage' in d) walk(d.stage)
  }
  walk(stage)
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
