import { promises as fsp } from 'node:fs'
import { resolve } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { ImageBuilder } from '../builder/image-builder.js'
import { exporters, isOutputType } from '../exporters/table.js'
import { parseImageName } from '../reference/reference.js'
import { formatPlatform } from '../oci/platform.js'
import { dockerIndexMessage } from '../exporters/docker.js'
import type { BuildOptions, BuildResult, LocalBuildResult, OutputSpec } from './options.js'
import { resolveBuildOptions } from './resolve-options.js'
import { checkSecrets } from './secrets.js'
import { runSettings } from './run-settings.js'
import { imageAnnotations } from './annotations.js'
import { namedContexts } from './named-contexts.js'
import { toBuildError, type GatewayScope } from './error-gateway.js'
import type { BuildPosition, Driver, DriverRequest } from '../drivers/driver.js'

export type { BuildOptions, BuildResult, LocalBuildResult, OutputSpec } from './options.js'

/**
 * The one execution gateway: options checked → driver (`opts.driver`, else `fallback`: the local
 * one, which the package entry wires in) → result. Whatever fails leaves as an
 * {@link ImagesmithError} with a stable code, the step it failed in (`details.step`) and the cause.
 */
export async function buildImage(builder: ImageBuilder, opts: BuildOptions & { readonly driver?: undefined }, fallback: Driver & { build(r: DriverRequest): Promise<LocalBuildResult> }): Promise<LocalBuildResult>
export async function buildImage(builder: ImageBuilder, opts: BuildOptions, fallback: Driver): Promise<BuildResult>
export async function buildImage(builder: ImageBuilder, opts: BuildOptions, fallback: Driver): Promise<BuildResult> {
  const scope: { -readonly [K in keyof GatewayScope]: GatewayScope[K] } = { contextDir: '', cacheDir: '' }
  const at: BuildPosition = { phase: 'prepare' }
  const releases: (() => Promise<void>)[] = []
  try {
    const request = await checkBuild(builder, opts, scope, at, releases)
    return await (opts.driver ?? fallback).build(request)
  } catch (e) {
    throw toBuildError(e, scope, at)
  } finally {
    for (const release of releases) await release().catch(() => undefined)
  }
}

/** Everything about the options that fails before any work, whichever driver runs the build (or a bake target). */
export async function checkBuild(
  builder: ImageBuilder,
  opts: BuildOptions,
  scope: { -readonly [K in keyof GatewayScope]: GatewayScope[K] },
  position: BuildPosition,
  releases: (() => Promise<void>)[],
): Promise<DriverRequest> {
  const resolved = resolveBuildOptions(opts)
  scope.contextDir = resolved.contextDir
  scope.cacheDir = resolved.cacheDir
  const tags = [...(opts.tags ?? [])]
  for (const t of tags) parseImageName(t) // bad tags fail before any work
  if (opts.output) {
    validateOutput(opts.output)
    // Refused before any work: the engine would be reached only after every platform was built.
    if (opts.output.type === 'docker' && resolved.platforms.length > 1) {
      const platforms = resolved.platforms.map(formatPlatform)
      throw new ImagesmithError(ErrorCodes.INDEX_NOT_SUPPORTED, dockerIndexMessage(platforms), { output: 'docker', platforms })
    }
    if ('dest' in opts.output) scope.output = resolve(opts.output.dest)
  }
  checkDriver(opts.driver)
  checkBudgetOption(opts.budget)
  await checkContext(resolved.contextDir, opts.context ?? '.')
  const secrets = await checkSecrets(opts.secrets)
  const settings = runSettings(opts)
  const labels = checkLabels(opts.labels)
  const annotations = imageAnnotations(opts.annotations, resolved.platforms, opts.output?.type)
  const contexts = namedContexts(opts.buildContexts)
  for (const c of contexts?.values() ?? []) if (c.kind === 'dir') await checkContext(c.path, c.path)
  return {
    target: builder,
    opts,
    resolved,
    tags,
    secrets,
    ...(settings ? { runSettings: settings } : {}),
    ...(labels ? { labels } : {}),
    ...(annotations ? { annotations } : {}),
    ...(contexts ? { contexts } : {}),
    position,
    onFinally: (release) => void releases.push(release),
  }
}

function checkDriver(driver: unknown): void {
  if (driver === undefined) return
  const d = driver as Partial<Driver> | null
  if (!d || typeof d !== 'object' || typeof d.build !== 'function' || typeof d.name !== 'string') {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, 'driver must be an object with a name and a build(request) method', { option: 'driver' })
  }
}

function checkBudgetOption(budget: BuildOptions['budget']): void {
  if (budget === undefined) return
  const keys = ['size', 'wasted', 'layers']
  const bad = !budget || typeof budget !== 'object' || Object.entries(budget).some(([k, v]) => !keys.includes(k) || (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)))
  if (bad) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, 'budget takes size and wasted (bytes) and layers (a count), each a non-negative integer', { option: 'budget', value: JSON.stringify(budget) })
}

function checkLabels(labels: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> | undefined {
  if (labels === undefined) return undefined
  const bad = !labels || typeof labels !== 'object' || Array.isArray(labels) || Object.entries(labels).some(([k, v]) => k === '' || typeof v !== 'string')
  if (bad) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, 'labels must be a record of non-empty keys to string values', { option: 'labels' })
  return Object.keys(labels).length > 0 ? labels : undefined
}

/** Like `docker build`, a context that is not there fails before anything runs, naming the directory. */
async function checkContext(dir: string, written: string): Promise<void> {
  let isDir: boolean
  try {
    isDir = (await fsp.stat(dir)).isDirectory()
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code
    if (errno === 'ENOENT' || errno === 'ENOTDIR') {
      throw new ImagesmithError(ErrorCodes.CONTEXT_NOT_FOUND, `unable to prepare context: path ${JSON.stringify(written)} not found (${dir})`, { path: dir }, { cause: e })
    }
    throw new ImagesmithError(ErrorCodes.CONTEXT_UNREADABLE, `unable to prepare context: cannot read ${dir}: ${(e as Error).message}`, { path: dir }, { cause: e })
  }
  if (!isDir) throw new ImagesmithError(ErrorCodes.CONTEXT_NOT_FOUND, `unable to prepare context: context must be a directory: ${dir}`, { path: dir })
}

function validateOutput(output: OutputSpec): void {
  // Outputs on disk need a dest; `docker` and `registry` go where the tags and the host say.
  const needsDest = output?.type === 'oci' || output?.type === 'oci-layout'
  const dest = (output as { dest?: unknown } | undefined)?.dest
  if (!output || !isOutputType(output.type) || (needsDest && (typeof dest !== 'string' || dest === ''))) {
    const types = Object.keys(exporters).map((t) => `'${t}'`).join(' | ')
    throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, `invalid output ${JSON.stringify(output)}: expected { type: ${types}, dest } (dest for oci and oci-layout)`, { output })
  }
}
