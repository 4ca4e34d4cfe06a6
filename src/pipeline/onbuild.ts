import type { StageDef } from '../graph/stage.js'
import type { BaseImage } from '../solver/types.js'

/**
 * Reads the config of every image a stage (or a stage it reads from) starts FROM, before the graph is
 * compiled, and returns their ONBUILD triggers by reference. The graph then runs them right after
 * those FROMs, as Docker does (graph/compile). `onRef` names the reference being read, so a failure
 * is reported against its FROM.
 */
export async function baseTriggers(
  stage: StageDef,
  resolve: (ref: string) => Promise<BaseImage>,
  onRef: (ref: string) => void = () => {},
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
  const out = new Map<string, readonly string[]>()
  for (const ref of refs) {
    onRef(ref)
    const triggers = (await resolve(ref)).config.config?.OnBuild ?? []
    if (triggers.length > 0) out.set(ref, [...triggers])
  }
  return out
}
