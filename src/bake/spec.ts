import type { BakeEntry, BakeSecret, BakeSsh } from './types.js'

/**
 * A target as one file (or one inherited parent) states it: every key optional, `undefined` meaning
 * "not said here", which is what lets inherits and merged files fill it in. Mutable while resolving only.
 */
export interface TargetSpec {
  description?: string
  inherits?: string[]
  context?: string
  dockerfile?: string
  dockerfileInline?: string
  target?: string
  args?: Record<string, string>
  labels?: Record<string, string>
  annotations?: string[]
  attest?: BakeEntry[]
  tags?: string[]
  platforms?: string[]
  outputs?: BakeEntry[]
  contexts?: Record<string, string>
  cacheFrom?: BakeEntry[]
  cacheTo?: BakeEntry[]
  secrets?: BakeSecret[]
  ssh?: BakeSsh[]
  noCache?: boolean
  noCacheFilter?: string[]
  pull?: boolean
  network?: string
  shmSize?: string
  ulimits?: string[]
  extraHosts?: Record<string, string>
  entitlements?: string[]
  call?: string
}

/**
 * Lays `top` over `base` in place, key by key as buildx's `Target.Merge`: scalars, `tags`, `platforms`,
 * `output` and `cache-to` are replaced; `args`, `labels`, `contexts`, `extra-hosts` merge per name;
 * `annotations`, `attest`, `secret`, `ssh`, `cache-from`, `no-cache-filter`, `ulimits`, `entitlements` append.
 */
export function mergeSpec(base: TargetSpec, top: TargetSpec): TargetSpec {
  for (const k of ['description', 'context', 'dockerfile', 'dockerfileInline', 'target', 'noCache', 'pull', 'network', 'shmSize', 'call'] as const) {
    if (top[k] !== undefined) (base as Record<string, unknown>)[k] = top[k]
  }
  for (const k of ['tags', 'platforms', 'outputs', 'cacheTo'] as const) {
    if (top[k] !== undefined) (base as Record<string, unknown>)[k] = [...top[k]]
  }
  for (const k of ['args', 'labels', 'contexts', 'extraHosts'] as const) {
    if (top[k] !== undefined) base[k] = { ...base[k], ...top[k] }
  }
  for (const k of ['annotations', 'noCacheFilter', 'ulimits', 'entitlements', 'cacheFrom', 'secrets', 'ssh'] as const) {
    if (top[k] !== undefined) (base as Record<string, unknown>)[k] = [...((base[k] as unknown[]) ?? []), ...top[k]]
  }
  if (top.attest !== undefined) base.attest = mergeAttest(base.attest ?? [], top.attest)
  if (top.inherits !== undefined) base.inherits = [...(base.inherits ?? []), ...top.inherits]
  return base
}

/** One attestation per type: a later one of the same type replaces the earlier (buildx `Attests.Merge`). */
export function mergeAttest(base: readonly BakeEntry[], top: readonly BakeEntry[]): BakeEntry[] {
  const out = [...base]
  for (const a of top) {
    const i = out.findIndex((b) => b.type === a.type)
    if (i >= 0) out[i] = a
    else out.push(a)
  }
  return out
}

export function cloneSpec(s: TargetSpec): TargetSpec {
  return mergeSpec({}, s)
}

/** Drops repeats, keeping the first of each (buildx `normalize`). */
export function dedupe<T>(items: readonly T[], key: (x: T) => string = (x) => (typeof x === 'string' ? x : JSON.stringify(x))): T[] {
  const seen = new Set<string>()
  return items.filter((x) => {
    const k = key(x)
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}
