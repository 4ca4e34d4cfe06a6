import type { BakeEntry, BakePlan, BakeTarget } from './types.js'

/** A `$${`-escaped copy: the printed file reads back as the same values (buildx `Target.MarshalJSON`). */
const escapeTemplate = (s: string): string => s.split('${').join('$${').split('%{').join('%%{')

const sortedEntry = (e: BakeEntry): Record<string, string> => Object.fromEntries(Object.keys(e).sort().map((k) => [k, e[k]!]))

function escapedRecord(m: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.keys(m).sort().map((k) => [k, escapeTemplate(m[k]!)]))
}

/** One target in buildx's `--print` shape: its keys in buildx's order, empty ones left out. */
export function printTarget(t: BakeTarget): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const put = (k: string, v: unknown): void => {
    if (v === undefined) return
    if (Array.isArray(v) && v.length === 0) return
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) return
    out[k] = v
  }
  put('description', t.description || undefined)
  put('annotations', t.annotations.map(escapeTemplate))
  put('attest', t.attest.map(sortedEntry))
  put('context', t.context)
  put('contexts', Object.fromEntries(Object.keys(t.contexts).sort().map((k) => [k, t.contexts[k]!])))
  put('dockerfile', t.dockerfile)
  put('dockerfile-inline', t.dockerfileInline === undefined ? undefined : escapeTemplate(t.dockerfileInline))
  put('args', escapedRecord(t.args))
  put('labels', escapedRecord(t.labels))
  put('tags', t.tags)
  put('cache-from', t.cacheFrom.map(sortedEntry))
  put('cache-to', t.cacheTo.map(sortedEntry))
  put('target', t.target)
  put('secret', t.secrets.map((s) => ({ ...(s.id ? { id: s.id } : {}), ...(s.src ? { src: s.src } : {}), ...(s.env ? { env: s.env } : {}) })))
  put('ssh', t.ssh.map((s) => ({ id: s.id, ...(s.paths.length ? { paths: s.paths } : {}) })))
  put('platforms', t.platforms)
  put('output', t.outputs.map(sortedEntry))
  put('pull', t.pull)
  put('no-cache', t.noCache)
  put('network', t.network)
  put('no-cache-filter', t.noCacheFilter)
  put('shm-size', t.shmSize)
  put('ulimits', t.ulimits)
  put('call', t.call)
  put('entitlements', t.entitlements)
  put('extra-hosts', escapedRecord(t.extraHosts))
  return out
}

/** The `{ group, target }` object `docker buildx bake --print` prints; names sorted, `group` left out when empty. */
export function bakePrintObject(plan: BakePlan): { group?: Record<string, unknown>; target: Record<string, unknown> } {
  const groups = Object.keys(plan.groups).sort()
  const group = Object.fromEntries(groups.map((g) => [g, { ...(plan.groups[g]!.description ? { description: plan.groups[g]!.description } : {}), targets: [...plan.groups[g]!.targets] }]))
  const target = Object.fromEntries(Object.keys(plan.targets).sort().map((n) => [n, printTarget(plan.targets[n]!)]))
  return groups.length > 0 ? { group, target } : { target }
}

/**
 * `--print` output: the plan as buildx prints it, two-space indented, keys in a fixed order, and `<`, `>`,
 * `&` escaped as Go's encoder does, so the same files and flags give the same bytes.
 */
export function bakePrintJson(plan: BakePlan): string {
  return JSON.stringify(bakePrintObject(plan), null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
