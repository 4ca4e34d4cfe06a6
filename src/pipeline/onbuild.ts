import type { StageDef } from '../graph/stage.js'
import { stagePlatform } from '../graph/compile.js'
import type { BaseImage } from '../solver/types.js'
import type { Platform } from '../oci/types.js'
import { formatPlatform, normalizePlatform } from '../oci/platform.js'

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
  resolve: (ref: string, platform?: Platform) => Promise<BaseImage>,
  onFailure: (ref: string) => void = () => {},
  at?: { readonly platform: Platform; readonly buildPlatform?: Platform },
): Promise<ReadonlyMap<string, readonly string[]>> {
  // With `at`, each base is read for its stage's platform (the stage's own, its base stage's, else
  // `at.platform`, as the graph compiles it) and keyed by baseKey.
  const refs = new Map<string, { ref: string; platform?: Platform }>()
  const platforms = new Map<StageDef, Platform>()
  const platformOf = (s: StageDef): Platform => {
    // The chain of base stages up to one whose platform is known: a loop, chains are deep.
    const chain: StageDef[] = []
    let cur: StageDef | undefined = s
    let p: Platform | undefined
    while (cur) {
      p = platforms.get(cur) ?? stagePlatform(cur, at)
      if (p) break
      chain.push(cur)
      cur = 'stage' in cur.base ? cur.base.stage : undefined
    }
    p ??= at!.platform
    for (const c of chain) platforms.set(c, p)
    return p
  }
  // Depth-first with an explicit stack (a chain of 10,000 stages is 10,000 deep), refs in the order
  // a recursive walk finds them.
  const seen = new Set<StageDef>([stage])
  const stack: { s: StageDef; reads: StageDef[]; next: number }[] = []
  const enter = (s: StageDef): void => {
    const reads: StageDef[] = []
    if ('ref' in s.base) {
      if (s.base.ref !== 'scratch') {
        if (!at) refs.set(s.base.ref, { ref: s.base.ref })
        else {
          const platform = platformOf(s)
          refs.set(baseKey(s.base.ref, platform), { ref: s.base.ref, platform })
        }
      }
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
  const read = async ([key, { ref, platform }]: [string, { ref: string; platform?: Platform }]): Promise<[string, readonly string[]]> => {
    try {
      return [key, [...((await (platform ? resolve(ref, platform) : resolve(ref))).config.config?.OnBuild ?? [])]]
    } catch (e) {
      if (!failed) onFailure(ref)
      failed = true
      throw e
    }
  }
  const all = await Promise.all([...refs].map(read))
  return new Map(all.filter(([, t]) => t.length > 0))
}

/** The key of a base's triggers read for a platform, in what {@link baseTriggers} gives with `at`. */
export function baseKey(ref: string, platform: Platform): string {
  return `${formatPlatform(normalizePlatform(platform))}\u0000${ref}`
}
