import { isImageBuilder, type ImageBuilder } from '../builder/image-builder.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { deepFreeze } from '../util/freeze.js'
import { finishTarget, targetDeps } from './finish.js'
import { isPattern, matchNames } from './names.js'
import { applyOverrides, overridesByTarget, parseSets } from './overrides.js'
import { MAX_BAKE_DEPTH } from './resolve.js'
import { dedupe, type TargetSpec } from './spec.js'
import type { BakeTarget } from './types.js'

/** The build settings of a script target: a bake target's, less what only a Dockerfile build has. */
export type ScriptTargetSettings = Omit<BakeTarget, 'dockerfile' | 'dockerfileInline' | 'call'>

/** One target of a TypeScript build script: the exported builder and the settings `--set` gave it. */
export interface ScriptTarget {
  readonly name: string
  readonly builder: ImageBuilder
  readonly settings: ScriptTargetSettings
}

/** Keys that only mean something for a Dockerfile build. */
const DOCKERFILE_ONLY = new Set(['dockerfile', 'call'])

/**
 * A build script's targets, by name, from its module: a default export that is a builder is `default`,
 * one that is a record gives its builder-valued keys, and every named export that is a builder is a
 * target too (`export default { api, web }` and `export const api = …` both work). Exports that are no
 * builder (helpers, constants) are not targets. One name bound to two different builders is an error.
 */
export function scriptTargets(mod: Readonly<Record<string, unknown>>, file: string): Readonly<Record<string, ImageBuilder>> {
  const out: Record<string, ImageBuilder> = {}
  const add = (name: string, b: ImageBuilder): void => {
    if (out[name] !== undefined && out[name] !== b) {
      throw new ImagesmithError(ErrorCodes.BUILD_SCRIPT_INVALID, `${file}: target ${JSON.stringify(name)} is both a key of the default export and a named export, with different builders`, { path: file, target: name })
    }
    out[name] = b
  }
  let def = mod.default
  // tsx may wrap a CJS-style module's default export once more (as the script loader unwraps it).
  if (def && typeof def === 'object' && !isImageBuilder(def) && 'default' in def && Object.keys(def).length === 1) def = (def as { default: unknown }).default
  if (isImageBuilder(def)) add('default', def)
  else if (def && typeof def === 'object') for (const [k, v] of Object.entries(def)) if (isImageBuilder(v)) add(k, v)
  for (const [k, v] of Object.entries(mod)) if (k !== 'default' && isImageBuilder(v)) add(k, v)
  if (Object.keys(out).length === 0) {
    throw new ImagesmithError(ErrorCodes.BUILD_SCRIPT_INVALID, `${file} exports no image builder: export builders (export default { api, web }, or export const api = image()…)`, { path: file })
  }
  return Object.freeze(out)
}

export interface SelectScriptTargetsOptions {
  /** `--set PATTERN.KEY=VALUE` flags, the same as for bake files (no `dockerfile` or `call`: a script has no Dockerfile). */
  readonly set?: readonly string[]
  readonly env?: Readonly<Record<string, string | undefined>>
  /** The script, for errors. */
  readonly file?: string
}

/**
 * Picks the requested targets (names or `*` / `?` patterns; with none, `default` if the script has one,
 * else every target) and applies `--set` to each. A `contexts.NAME=target:OTHER` set makes OTHER a
 * dependency, added as `linked` when not asked for. Returned in request order, dependencies after.
 */
export function selectScriptTargets(builders: Readonly<Record<string, ImageBuilder>>, requested: readonly string[] = [], opts: SelectScriptTargetsOptions = {}): ScriptTarget[] {
  const available = Object.keys(builders)
  const file = opts.file ?? 'the build script'
  const missing = (name: string, extra: Record<string, unknown> = {}): ImagesmithError =>
    new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `target ${JSON.stringify(name)} not found in ${file} (targets: ${available.join(', ')})`, { target: name, targets: available, ...(opts.file ? { path: opts.file } : {}), ...extra })
  const names: string[] = []
  const asked = requested.length > 0 ? requested : Object.hasOwn(builders, 'default') ? ['default'] : available
  for (const r of asked) {
    if (Object.hasOwn(builders, r)) names.push(r)
    else if (isPattern(r) && matchNames(r, available).length > 0) names.push(...matchNames(r, available))
    else throw missing(r)
  }
  const sets = parseSets(opts.set ?? [], opts.env)
  for (const s of sets) {
    if (DOCKERFILE_ONLY.has(s.key)) throw new ImagesmithError(ErrorCodes.BAKE_SET_INVALID, `--set ${s.raw}: ${s.key} is for Dockerfile targets; ${file}'s targets are builders`, { set: s.raw, key: s.key })
  }
  const overrides = overridesByTarget(sets, available)

  const specs = new Map<string, TargetSpec>()
  const linked = new Set<string>()
  const visit = (name: string, path: readonly string[], isLink: boolean): void => {
    if (path.includes(name)) throw new ImagesmithError(ErrorCodes.BAKE_CYCLE, `targets take themselves as a context: ${[...path.slice(path.indexOf(name)), name].join(' -> ')}`, { kind: 'context', cycle: [...path.slice(path.indexOf(name)), name] })
    if (path.length >= MAX_BAKE_DEPTH) throw new ImagesmithError(ErrorCodes.BAKE_FILE_INVALID, `target contexts nest deeper than ${MAX_BAKE_DEPTH}`, { chain: path.slice(0, 8) })
    let spec = specs.get(name)
    if (!spec) {
      spec = {}
      applyOverrides(spec, overrides.get(name))
      if (isLink) {
        spec.outputs = [{ type: 'cacheonly' }]
        linked.add(name)
      }
      specs.set(name, spec)
    }
    for (const dep of targetDeps(spec)) {
      if (!Object.hasOwn(builders, dep)) throw missing(dep, { contextOf: name })
      visit(dep, [...path, name], !wanted.has(dep))
    }
  }
  const wanted = new Set(names)
  for (const n of dedupe(names)) visit(n, [], false)

  return [...specs.entries()].map(([name, spec]) => {
    const { dockerfile: _d, dockerfileInline: _i, call: _c, ...settings } = finishTarget(name, spec, linked.has(name))
    return Object.freeze({ name, builder: builders[name]!, settings: deepFreeze(settings) })
  })
}
