import { ErrorCodes, ImagesmithError } from '../errors.js'
import { EntryError, parseAttest, parseCache, parseOutput, parseSecret, parseSsh } from './entries.js'
import { matchNames } from './names.js'
import { parseGoBool } from './parse-file.js'
import { mergeAttest, type TargetSpec } from './spec.js'
import type { BakeEntry } from './types.js'

/** One `--set PATTERN.KEY[.NAME][+]=VALUE`, read but not yet matched to targets. */
export interface BakeSet {
  /** The flag's text, for errors. */
  readonly raw: string
  /** A target name or a pattern (`*`, `?`) over the target names. */
  readonly pattern: string
  /** The key as bake names it (`tags`, `args`, `platform`, …). */
  readonly key: string
  /** The name after the key, for keys that take one (`args.NAME`, `labels.NAME`, `contexts.NAME`, `secret.ID`, `extra-hosts.HOST`). */
  readonly name?: string
  /** The value; absent only for `args.NAME` with no `=`, which takes NAME from the environment. */
  readonly value?: string
  /** `KEY+=VALUE`: add to the list instead of replacing it. */
  readonly append: boolean
}

/** The overrides one target gets, by `key[.name]`, after `--set`s are matched and `{target}` substituted. */
export type TargetOverrides = ReadonlyMap<string, Override>

export interface Override {
  readonly key: string
  readonly name?: string
  /** The last value given (scalar keys). */
  readonly value: string
  /** Every value given, in order (list keys: repeated `--set t.tags=a --set t.tags=b` gives both). */
  readonly values: readonly string[]
  readonly append: boolean
  readonly raw: string
}

/** List keys: repeated sets accumulate, `+=` appends to what the file says, `=` replaces it. */
const LIST_KEYS = new Set(['tags', 'platform', 'output', 'cache-from', 'cache-to', 'secrets', 'ssh', 'attest', 'entitlements', 'annotations', 'no-cache-filter', 'ulimits'])
/** Keys that name an entry: `args.NAME=…`. */
const NAMED_KEYS = new Set(['args', 'labels', 'contexts', 'secret', 'extra-hosts'])
const SCALAR_KEYS = new Set(['context', 'dockerfile', 'target', 'call', 'no-cache', 'pull', 'push', 'load', 'network', 'shm-size'])
const NOT_SUPPORTED = new Set(['policy', 'resources'])

/** Every key `--set` takes, for error messages. */
export const SET_KEYS: readonly string[] = [...SCALAR_KEYS, ...LIST_KEYS, ...[...NAMED_KEYS].map((k) => `${k}.NAME`)].sort()

function setError(message: string, set: string, extra: Record<string, unknown> = {}): ImagesmithError {
  return new ImagesmithError(ErrorCodes.BAKE_SET_INVALID, `--set ${set}: ${message}`, { set, ...extra })
}

/**
 * Reads `--set` flags as buildx's `newOverrides`: `PATTERN.KEY=VALUE`, `PATTERN.KEY+=VALUE` (append),
 * `PATTERN.args.NAME=VALUE`, and `PATTERN.args.NAME` alone (the value from `env`, skipped when unset).
 */
export function parseSets(sets: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): BakeSet[] {
  const out: BakeSet[] = []
  for (const raw of sets) {
    const eq = raw.indexOf('=')
    const left = eq < 0 ? raw : raw.slice(0, eq)
    const append = left.endsWith('+')
    const path = append ? left.slice(0, -1) : left
    const dot = path.indexOf('.')
    if (dot <= 0) throw setError('expected TARGET.KEY=VALUE', raw)
    const pattern = path.slice(0, dot)
    const rest = path.slice(dot + 1)
    const dot2 = rest.indexOf('.')
    const key = dot2 < 0 ? rest : rest.slice(0, dot2)
    const name = dot2 < 0 ? undefined : rest.slice(dot2 + 1)
    if (NOT_SUPPORTED.has(key)) throw setError(`${JSON.stringify(key)} is not supported`, raw, { key })
    if (!LIST_KEYS.has(key) && !NAMED_KEYS.has(key) && !SCALAR_KEYS.has(key)) throw setError(`unknown key ${JSON.stringify(key)} (known: ${SET_KEYS.join(', ')})`, raw, { key })
    if (NAMED_KEYS.has(key) && !name) throw setError(`${key} needs a name: ${pattern}.${key}.NAME=VALUE`, raw, { key })
    if (!NAMED_KEYS.has(key) && name !== undefined) throw setError(`${key} takes no name`, raw, { key })
    if (append && !LIST_KEYS.has(key)) throw setError(`${key} is not a list: += does not apply`, raw, { key })
    let value = eq < 0 ? undefined : raw.slice(eq + 1)
    if (value === undefined) {
      if (key !== 'args') throw setError('expected TARGET.KEY=VALUE', raw, { key })
      value = env[name!]
      if (value === undefined) continue
    }
    out.push({ raw, pattern, key, ...(name !== undefined ? { name } : {}), value, append })
  }
  return out
}

/**
 * Matches parsed sets against the target names: a name given exactly, else a pattern (none matching is an
 * error), and gives each target its overrides. `{target}` in a value becomes the target's name, so
 * `*.tags=registry.example/{target}:1.2` tags each target after itself.
 */
export function overridesByTarget(sets: readonly BakeSet[], names: readonly string[]): Map<string, Map<string, Override>> {
  const out = new Map<string, Map<string, Override>>()
  for (const s of sets) {
    const matched = names.includes(s.pattern) ? [s.pattern] : matchNames(s.pattern, names)
    if (matched.length === 0) {
      throw new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `--set ${s.raw}: no target matches ${JSON.stringify(s.pattern)} (targets: ${names.join(', ')})`, { set: s.raw, target: s.pattern, targets: [...names] })
    }
    for (const t of matched) {
      const m = out.get(t) ?? new Map<string, Override>()
      out.set(t, m)
      const okey = s.name === undefined ? s.key : `${s.key}.${s.name}`
      const value = s.value!.split('{target}').join(t)
      const prev = m.get(okey)
      m.set(okey, { key: s.key, ...(s.name !== undefined ? { name: s.name } : {}), value, values: [...(prev?.values ?? []), value], append: s.append, raw: s.raw })
    }
  }
  return out
}

function entries<T>(o: Override, parse: (v: unknown) => T): T[] {
  try {
    return o.values.map(parse)
  } catch (e) {
    if (e instanceof EntryError) throw setError(e.message, o.raw, { key: o.key })
    throw e
  }
}

function bool(o: Override): boolean {
  const b = parseGoBool(o.value)
  if (b === undefined) throw setError(`invalid value ${JSON.stringify(o.value)} for boolean key ${o.key}`, o.raw, { key: o.key })
  return b
}

/** Lays a target's overrides over its resolved spec in place, as buildx's `Target.AddOverrides`. */
export function applyOverrides(spec: TargetSpec, overrides: TargetOverrides | undefined): void {
  if (!overrides) return
  const list = <T>(cur: T[] | undefined, o: Override, next: T[]): T[] => (o.append ? [...(cur ?? []), ...next] : next)
  const secretUpdates: Override[] = []
  for (const o of overrides.values()) {
    switch (o.key) {
      case 'context':
        spec.context = o.value
        break
      case 'dockerfile':
        spec.dockerfile = o.value
        break
      case 'target':
        spec.target = o.value
        break
      case 'call':
        spec.call = o.value
        break
      case 'network':
        spec.network = o.value
        break
      case 'shm-size':
        spec.shmSize = o.value
        break
      case 'no-cache':
        spec.noCache = bool(o)
        break
      case 'pull':
        spec.pull = bool(o)
        break
      case 'push':
        spec.outputs = pushOverride(spec.outputs ?? [], bool(o))
        break
      case 'load':
        spec.outputs = loadOverride(spec.outputs ?? [], bool(o))
        break
      case 'args':
      case 'labels':
      case 'contexts':
      case 'extra-hosts': {
        const field = o.key === 'extra-hosts' ? 'extraHosts' : o.key
        spec[field] = { ...spec[field], [o.name!]: o.value }
        break
      }
      case 'secret':
        secretUpdates.push(o)
        break
      case 'tags':
        spec.tags = list(spec.tags, o, [...o.values])
        break
      case 'platform':
        spec.platforms = list(spec.platforms, o, [...o.values])
        break
      case 'annotations':
        // buildx appends annotations whether or not += is used.
        spec.annotations = [...(spec.annotations ?? []), ...o.values]
        break
      case 'entitlements':
        spec.entitlements = [...(spec.entitlements ?? []), ...o.values]
        break
      case 'no-cache-filter':
        spec.noCacheFilter = list(spec.noCacheFilter, o, [...o.values])
        break
      case 'ulimits':
        spec.ulimits = list(spec.ulimits, o, [...o.values])
        break
      case 'output':
        spec.outputs = list(spec.outputs, o, entries(o, parseOutput))
        break
      case 'cache-from':
        spec.cacheFrom = list(spec.cacheFrom, o, entries(o, parseCache))
        break
      case 'cache-to':
        spec.cacheTo = list(spec.cacheTo, o, entries(o, parseCache))
        break
      case 'secrets':
        spec.secrets = list(spec.secrets, o, entries(o, parseSecret))
        break
      case 'ssh':
        spec.ssh = list(spec.ssh, o, entries(o, parseSsh))
        break
      case 'attest':
        spec.attest = mergeAttest(spec.attest ?? [], entries(o, parseAttest))
        break
      default:
        throw setError(`unknown key ${JSON.stringify(o.key)}`, o.raw, { key: o.key })
    }
  }
  for (const o of secretUpdates) {
    const i = (spec.secrets ?? []).findIndex((s) => s.id === o.name)
    if (i < 0) throw setError(`secret ${JSON.stringify(o.name)} must be declared before it can be overridden`, o.raw, { key: o.key })
    const next = entries(o, parseSecret).at(-1)!
    if (next.id !== undefined && next.id !== o.name) throw setError(`secret override id ${JSON.stringify(next.id)} does not match declared secret ${JSON.stringify(o.name)}`, o.raw, { key: o.key })
    const secrets = [...spec.secrets!]
    secrets[i] = { id: o.name!, ...(next.src !== undefined ? { src: next.src } : {}), ...(next.env !== undefined ? { env: next.env } : {}) }
    spec.secrets = secrets
  }
}

/** buildx's `setPushOverride`: `push=false` drops registry outputs; `push=true` sets it on image outputs, or adds one. */
function pushOverride(outputs: BakeEntry[], push: boolean): BakeEntry[] {
  if (!push) return outputs.filter((o) => o.type !== 'registry').map((o) => (o.type === 'image' ? { ...o, push: 'false' } : o))
  const next = outputs.map((o) => (o.type === 'image' ? { ...o, push: 'true' } : o))
  return outputs.every((o) => o.type === 'docker') ? [...next, { type: 'image', push: 'true' }] : next
}

/** buildx's `setLoadOverride`: adds a `docker` output unless one without `dest` is there or another kind of output is. */
function loadOverride(outputs: BakeEntry[], load: boolean): BakeEntry[] {
  if (!load) return outputs
  for (const o of outputs) {
    if (o.type === 'docker' && o.dest === undefined) return outputs
    if (!['docker', 'image', 'registry', 'oci'].includes(o.type)) return outputs
  }
  return [...outputs, { type: 'docker' }]
}
