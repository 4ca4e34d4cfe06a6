import { ErrorCodes, ImagesmithError } from '../errors.js'
import { deepFreeze } from '../util/freeze.js'
import { isPattern, matchNames } from './names.js'
import { applyOverrides, overridesByTarget, parseSets, type Override } from './overrides.js'
import type { BakeConfig } from './parse-file.js'
import { finishTarget, targetDeps } from './finish.js'
import { cloneSpec, dedupe, mergeSpec, type TargetSpec } from './spec.js'
import type { BakeGroup, BakePlan, BakeTarget } from './types.js'

export interface ResolveBakeOptions {
  /** `--set` flags, applied as buildx does (after inherits, to each target and to each parent it inherits). */
  readonly set?: readonly string[]
  /** Where `--set PATTERN.args.NAME` (no value) reads NAME. */
  readonly env?: Readonly<Record<string, string | undefined>>
}

/** Groups, inherits and `target:` links nest at most this deep: a longer chain is refused, never recursed into. */
export const MAX_BAKE_DEPTH = 64

function cycle(kind: 'inherits' | 'group' | 'context', names: readonly string[]): ImagesmithError {
  const what = kind === 'inherits' ? 'inherit from themselves' : kind === 'group' ? 'contain themselves' : 'take themselves as a context'
  return new ImagesmithError(ErrorCodes.BAKE_CYCLE, `bake ${kind === 'group' ? 'groups' : 'targets'} ${what}: ${names.join(' -> ')}`, { kind, cycle: [...names] })
}

function tooDeep(kind: string, names: readonly string[]): ImagesmithError {
  return new ImagesmithError(ErrorCodes.BAKE_FILE_INVALID, `bake ${kind} nest deeper than ${MAX_BAKE_DEPTH}: ${names.slice(0, 8).join(' -> ')} -> …`, { kind, chain: names.slice(0, MAX_BAKE_DEPTH) })
}

/**
 * Resolves the requested names (`[TARGET|GROUP|PATTERN…]`, `default` when none) of parsed bake files to
 * the targets to build, as `docker buildx bake` does: groups expand recursively (a group wins over a
 * target of the same name), each target is its inherits merged in order with its own keys on top, `--set`
 * overrides follow, and a `target:NAME` context pulls NAME in as a dependency (output `cacheonly` when it
 * was not asked for). Loops in groups, inherits and links are typed errors.
 */
export function resolveBake(config: BakeConfig, requested: readonly string[] = [], opts: ResolveBakeOptions = {}): BakePlan {
  const allNames = [...config.groups.keys(), ...[...config.targets.keys()].filter((t) => !config.groups.has(t))]
  const asked: string[] = []
  // buildx: compose service names may hold dots; bake names them with `_`.
  for (const raw of (requested.length > 0 ? requested : ['default']).map((n) => n.split('.').join('_'))) {
    if (!isPattern(raw)) asked.push(raw)
    else {
      const hit = matchNames(raw, allNames)
      if (hit.length === 0) throw notFound(raw, config, `no target or group matches ${JSON.stringify(raw)}`)
      asked.push(...hit)
    }
  }
  const names = dedupe(asked)
  const overrides = overridesByTarget(parseSets(opts.set ?? [], opts.env), [...config.targets.keys()])

  const specs = new Map<string, TargetSpec>()
  const linked = new Set<string>()
  const groups = new Map<string, BakeGroup>()
  for (const name of names) {
    const { targets, groupNames } = expandGroup(config, name)
    for (const t of targets) if (!specs.has(t)) specs.set(t, resolveTarget(config, t, overrides))
    for (const g of groupNames) groups.set(g, config.groups.get(g)!)
  }

  // buildx lists what was asked for in the `default` group of --print, sorted.
  for (const name of names) {
    if (name === 'default' && groups.has('default')) continue
    const g = groups.get('default')
    groups.set('default', { name: 'default', ...(g?.description !== undefined ? { description: g.description } : {}), targets: [...(g?.targets ?? []), name] })
  }
  const dg = groups.get('default')
  if (dg) groups.set('default', { ...dg, targets: dedupe(dg.targets).sort() })

  for (const name of [...specs.keys()]) loadLinks(config, name, specs, linked, overrides, [])

  const targets: Record<string, BakeTarget> = {}
  for (const name of [...specs.keys()].sort()) targets[name] = finishTarget(name, specs.get(name)!, linked.has(name))
  const groupRecord: Record<string, BakeGroup> = {}
  for (const name of [...groups.keys()].sort()) groupRecord[name] = groups.get(name)!
  return deepFreeze({ groups: groupRecord, targets })
}

function notFound(name: string, config: BakeConfig, message: string, extra: Record<string, unknown> = {}): ImagesmithError {
  const targets = [...config.targets.keys()]
  const groups = [...config.groups.keys()]
  return new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `${message} in ${config.files.join(', ') || 'the bake files'} (targets: ${targets.join(', ') || 'none'}${groups.length ? `; groups: ${groups.join(', ')}` : ''})`, { target: name, targets, groups, files: [...config.files], ...extra })
}

/** A name's targets and the groups it went through, deduped in order; a name that is no group is a target. */
export function expandGroup(config: BakeConfig, name: string): { targets: string[]; groupNames: string[] } {
  const targets: string[] = []
  const groupNames: string[] = []
  const walk = (n: string, path: string[]): void => {
    const g = config.groups.get(n)
    if (!g) {
      targets.push(n)
      return
    }
    if (path.includes(n)) throw cycle('group', [...path.slice(path.indexOf(n)), n])
    if (path.length >= MAX_BAKE_DEPTH) throw tooDeep('groups', path)
    groupNames.push(n)
    for (const t of g.targets) walk(t, [...path, n])
  }
  walk(name, [])
  return { targets: dedupe(targets), groupNames: dedupe(groupNames) }
}

/**
 * buildx's `Config.target`: the target's parents resolved first (each with its own overrides), merged in
 * `inherits` order, then the target's own keys, then its overrides. A parent reached twice (a diamond)
 * is resolved once; one reached again while being resolved is a cycle.
 */
function resolveTarget(config: BakeConfig, name: string, overrides: ReadonlyMap<string, ReadonlyMap<string, Override>>): TargetSpec {
  const done = new Map<string, TargetSpec>()
  const walk = (n: string, path: string[], child?: string): TargetSpec => {
    const hit = done.get(n)
    if (hit) return hit
    if (path.includes(n)) throw cycle('inherits', [...path.slice(path.indexOf(n)), n])
    if (path.length >= MAX_BAKE_DEPTH) throw tooDeep('inherits', path)
    const own = config.targets.get(n)
    if (!own) {
      throw child === undefined
        ? notFound(n, config, `target ${JSON.stringify(n)} not found`)
        : notFound(n, config, `target ${JSON.stringify(n)} (inherited by ${JSON.stringify(child)}) not found`, { inheritedBy: child })
    }
    const parents: TargetSpec = {}
    for (const p of own.inherits ?? []) mergeSpec(parents, walk(p, [...path, n], n))
    const spec = mergeSpec(mergeSpec({}, parents), own)
    applyOverrides(spec, overrides.get(n))
    done.set(n, spec)
    return spec
  }
  const spec = cloneSpec(walk(name, []))
  delete spec.inherits
  return spec
}

/** buildx's `loadLinks`: each `target:NAME` context resolved (added as `cacheonly` if not asked for), walked for loops. */
function loadLinks(config: BakeConfig, name: string, specs: Map<string, TargetSpec>, linked: Set<string>, overrides: ReadonlyMap<string, ReadonlyMap<string, Override>>, visited: string[]): void {
  const path = [...visited, name]
  if (path.length > MAX_BAKE_DEPTH) throw tooDeep('target contexts', path)
  const spec = specs.get(name)!
  for (const dep of targetDeps(spec)) {
    if (dep === name || path.includes(dep)) throw cycle('context', [...path.slice(path.indexOf(dep)), dep])
    let d = specs.get(dep)
    if (!d) {
      if (!config.targets.has(dep)) throw notFound(dep, config, `target ${JSON.stringify(dep)} (a context of ${JSON.stringify(name)}) not found`, { contextOf: name })
      d = resolveTarget(config, dep, overrides)
      d.outputs = [{ type: 'cacheonly' }]
      linked.add(dep)
      specs.set(dep, d)
    }
    loadLinks(config, dep, specs, linked, overrides, path)
    // A target built from another needs what that one needs.
    for (const e of d.entitlements ?? []) if (!(spec.entitlements ?? []).includes(e)) spec.entitlements = [...(spec.entitlements ?? []), e]
    const mine = spec.platforms ?? []
    const theirs = d.platforms ?? []
    if (mine.length > 1 && theirs.length > 1 && !mine.every((p) => theirs.includes(p))) {
      throw new ImagesmithError(ErrorCodes.BAKE_FILE_INVALID, `target ${JSON.stringify(dep)} can't be used by ${JSON.stringify(name)} because its platforms [${theirs.join(' ')}] do not include [${mine.join(' ')}]`, { target: name, dependency: dep, platforms: mine, dependencyPlatforms: theirs })
    }
  }
}
