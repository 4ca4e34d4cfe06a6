import { join } from 'node:path'
import { isImageBuilder, type ImageBuilder } from '../builder/image-builder.js'
import { ErrorCodes, ImagesmithError, InvalidArgumentError } from '../errors.js'
import { checkBuild } from '../pipeline/build.js'
import { toBuildError, type GatewayScope } from '../pipeline/error-gateway.js'
import type { BuildOptions, LocalBuildResult } from '../pipeline/options.js'
import type { DriverRequest } from '../drivers/driver.js'
import { contextName, type NamedContext } from '../context/named-contexts.js'
import { bakeLocally, type BakePosition, type LocalTarget } from '../drivers/local.js'

/**
 * What may differ between the targets of one bake: what each image is (args, platforms, stages, named
 * contexts, labels, annotations) and where it goes (tags, output, its cache export). The solve imports
 * every target's `cacheFrom` (an import only answers lookups). Everything else (context, store,
 * secrets, network, runtime, no-cache) is the solve's, so one for the whole bake.
 */
export type BakeTargetOptions = Pick<BuildOptions, 'tags' | 'output' | 'buildArgs' | 'platform' | 'platforms' | 'labels' | 'annotations' | 'buildContexts' | 'stages' | 'targetFor' | 'noCacheFilter' | 'cacheFrom' | 'cacheTo' | 'attest'> & {
  /**
   * Named contexts that are other builders (a bake file's `contexts: { base: "target:base" }`): FROM
   * or COPY --from that name reads the builder's stage, compiled into the same graph, so it runs once.
   */
  readonly targetContexts?: Readonly<Record<string, ImageBuilder>>
}

export interface BakeOptions extends Omit<BuildOptions, keyof BakeTargetOptions | 'driver'> {
  /** Each target's own options, by target name; a target not named here takes the bake's. */
  readonly targets?: Readonly<Record<string, BakeTargetOptions>>
  /** Writes each target without an `output` of its own to `DIR/<target>.tar` (an OCI archive). */
  readonly outDir?: string
  /** Options every target takes unless its own say otherwise (`targets`). */
  readonly defaults?: BakeTargetOptions
}

/** What a bake gave: each target's build result, by target name, as `build()` gives it for that target alone. */
export type BakeResult = Readonly<Record<string, LocalBuildResult>>

/** Target names become file names (`--out-dir`) and progress labels: no path separators, no dot names. */
const TARGET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

/**
 * Builds many targets in ONE solve (`docker buildx bake`): every target × platform is an output of
 * one graph, so a step several targets share (a common base) runs once, and the CPU and container
 * limits hold for the whole bake. Each target's image is the one `build()` makes for it alone (the
 * same digest on the same store). Each target's options are checked as a build's are, before any work.
 * A failing target fails the bake with {@link ErrorCodes.BAKE_TARGET_FAILED} naming it; the rest of
 * the solve is cancelled cleanly (running steps stopped, nothing half-written).
 */
export async function bake(targets: Readonly<Record<string, ImageBuilder>>, options: BakeOptions = {}): Promise<BakeResult> {
  const names = checkTargets(targets, options)
  const at: BakePosition = { phase: 'prepare' }
  const releases: (() => Promise<void>)[] = []
  const scopes = new Map<string, GatewayScope>()
  let checking: string | undefined
  try {
    const entries: LocalTarget[] = []
    for (const name of names) {
      checking = name
      const scope: { -readonly [K in keyof GatewayScope]: GatewayScope[K] } = { contextDir: '', cacheDir: '' }
      scopes.set(name, scope)
      const request = await checkBuild(targets[name]!, targetOptions(name, options), scope, at, releases)
      entries.push({ name, request: withTargetContexts(request, { ...options.defaults?.targetContexts, ...options.targets?.[name]?.targetContexts }) })
    }
    checking = undefined
    const results = await bakeLocally(entries, at)
    return Object.freeze(Object.fromEntries(names.map((n) => [n, results.get(n)!])))
  } catch (e) {
    const failed = checking !== undefined ? [checking] : [...(at.targets ?? [])]
    const err = toBuildError(e, scopes.get(failed[0] ?? names[0]!) ?? { contextDir: '', cacheDir: '' }, at)
    if (failed.length === 0 || err.code === ErrorCodes.ABORTED) throw err
    const which = failed.length === 1 ? `target ${JSON.stringify(failed[0])}` : `targets ${failed.map((n) => JSON.stringify(n)).join(', ')}`
    throw new ImagesmithError(ErrorCodes.BAKE_TARGET_FAILED, `${which}: ${err.message}`, { ...err.details, target: failed[0], targets: failed, code: err.code }, { cause: err })
  } finally {
    for (const release of releases) await release().catch(() => undefined)
  }
}

/** A target's build options: the bake's, its defaults, then its own; `outDir` gives an output to those without one. */
export function targetOptions(name: string, options: BakeOptions): BuildOptions {
  const { targets: _t, outDir, defaults, ...common } = options
  const { targetContexts: _c, ...own } = { ...defaults, ...options.targets?.[name] }
  const output = own.output ?? (outDir !== undefined ? { type: 'oci' as const, dest: join(outDir, `${name}.tar`) } : undefined)
  return { ...common, ...own, ...(output ? { output } : {}) }
}

/** A request whose named contexts include other builders' stages. */
function withTargetContexts(request: DriverRequest, builders: Readonly<Record<string, ImageBuilder>>): DriverRequest {
  const entries = Object.entries(builders)
  if (entries.length === 0) return request
  const contexts = new Map<string, NamedContext>(request.contexts ?? [])
  for (const [name, b] of entries) {
    if (!isImageBuilder(b)) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `targetContexts.${name} is not an image builder`, { option: 'targetContexts', name })
    contexts.set(contextName(name), { kind: 'stage', stage: b.toStage() })
  }
  return { ...request, contexts }
}

function checkTargets(targets: Readonly<Record<string, ImageBuilder>>, options: BakeOptions): string[] {
  if (!targets || typeof targets !== 'object' || Array.isArray(targets)) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'bake takes a record of target names to image builders', { option: 'targets' })
  }
  if ((options as { driver?: unknown }).driver !== undefined) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'bake runs on the local driver only: one solve on this machine', { option: 'driver' })
  }
  const names = Object.keys(targets)
  if (names.length === 0) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'bake needs at least one target', { option: 'targets' })
  for (const name of names) {
    if (!TARGET_NAME.test(name)) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid target name ${JSON.stringify(name)}: letters, digits, '_', '.', '-' (no path separators)`, { target: name })
    if (!isImageBuilder(targets[name])) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `target ${JSON.stringify(name)} is not an image builder`, { target: name })
  }
  for (const name of Object.keys(options.targets ?? {})) {
    if (!Object.hasOwn(targets, name)) throw new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `options for target ${JSON.stringify(name)}, which the bake does not build (targets: ${names.join(', ')})`, { target: name, targets: names })
  }
  return names
}
