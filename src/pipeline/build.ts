import { promises as fsp } from 'node:fs'
import { resolve } from 'node:path'
import { ErrorCodes, ImagesmithError, isImagesmithError, throwIfAborted } from '../errors.js'
import { ImageBuilder } from '../builder/image-builder.js'
import { stageNamesOf } from '../graph/stage-labels.js'
import { executors } from '../ops/table.js'
import { requireGraphEntitlements } from './entitlements.js'
import { baseResolver } from '../sources/base.js'
import { baseTriggers, lowerTriggers } from './onbuild.js'
import { exportArtifact, exporters, isOutputType } from '../exporters/table.js'
import type { ExportContext, ExportResult } from '../exporters/exporter.js'
import { finalizeImage } from '../artifacts/finalize.js'
import { parseImageName } from '../reference/reference.js'
import { solve } from '../solver/solve.js'
import { solverFor } from '../rootless/solve-in-namespace.js'
import { Store } from '../store/store.js'
import { nameImage } from '../store/local-images.js'
import type { BuildOptions, BuildResult, OutputSpec } from './options.js'
import { resolveBuildOptions } from './resolve-options.js'
import { checkSecrets } from './secrets.js'
import { runSettings } from './run-settings.js'
import { imageAnnotations } from './annotations.js'
import { applyNamedContexts, namedContexts } from './named-contexts.js'
import { toBuildError, type FailurePoint, type GatewayScope } from './error-gateway.js'
import type { ProgressEvent } from '../solver/types.js'
import { RegistryClient } from '../registry/client.js'
import { PullSession } from '../registry/pull.js'

export type { BuildOptions, BuildResult, OutputSpec } from './options.js'

/**
 * The one execution gateway: compile → solve → finalize → export. Whatever fails leaves as an
 * {@link ImagesmithError} with a stable code, the step it failed in (`details.step`) and the cause.
 */
export async function buildImage(builder: ImageBuilder, opts: BuildOptions = {}): Promise<BuildResult> {
  const scope: { -readonly [K in keyof GatewayScope]: GatewayScope[K] } = { contextDir: '', cacheDir: '' }
  const at: { -readonly [K in keyof FailurePoint]: FailurePoint[K] } = { phase: 'prepare' }
  const stores: Store[] = []
  try {
    return await runBuild(builder, opts, scope, at, stores)
  } catch (e) {
    throw toBuildError(e, scope, at)
  } finally {
    // The lease ends with the build, whatever happened: what it held becomes prunable (and "used now").
    for (const s of stores) await s.lease.release().catch(() => undefined)
  }
}

async function runBuild(
  builder: ImageBuilder,
  opts: BuildOptions,
  scope: { -readonly [K in keyof GatewayScope]: GatewayScope[K] },
  at: { -readonly [K in keyof FailurePoint]: FailurePoint[K] },
  stores: Store[],
): Promise<BuildResult> {
  const resolved = resolveBuildOptions(opts)
  scope.contextDir = resolved.contextDir
  scope.cacheDir = resolved.cacheDir
  const tags = [...(opts.tags ?? [])]
  for (const t of tags) parseImageName(t) // bad tags fail before any work
  if (opts.output) {
    validateOutput(opts.output)
    if ('dest' in opts.output) scope.output = resolve(opts.output.dest)
  }
  await checkContext(resolved.contextDir, opts.context ?? '.')
  const secrets = await checkSecrets(opts.secrets)
  const settings = runSettings(opts)
  const labels = checkLabels(opts.labels)
  const annotations = imageAnnotations(opts.annotations, resolved.platform, opts.output?.type)
  const contexts = namedContexts(opts.buildContexts)
  for (const c of contexts?.values() ?? []) if (c.kind === 'dir') await checkContext(c.path, c.path)
  const store = Store.shared(resolved.cacheDir)
  stores.push(store)
  await store.init()
  // Before the first lookup: a prune in another process skips what this build holds (store/lease.ts).
  await store.lease.begin()
  throwIfAborted(opts.signal)
  // Idle keep-alive sockets do not hold the process open: the client needs no close.
  const registry = new PullSession(new RegistryClient(resolved.registry))
  // Base configs are read before compiling: their ONBUILD triggers become steps after their FROM.
  at.phase = 'solve'
  const resolveBase = baseResolver({ store, platform: resolved.platform, signal: opts.signal, registry, pull: opts.pull ?? false })
  let target = builder
  let names = opts.stages ? stageNamesOf(opts.stages) : undefined
  if (contexts) {
    const applied = applyNamedContexts(builder.toStage(), contexts, names)
    target = new ImageBuilder(applied.stage)
    if (names) names = new Map([...names].map(([s, n]) => [applied.replaced.get(s) ?? s, n]))
  }
  const triggers = await baseTriggers(target.toStage(), resolveBase, (ref) => {
    at.step = `FROM ${ref}`
  })
  const graph = target.graph({ buildArgs: opts.buildArgs, baseTriggers: triggers, lowerTriggers, platform: resolved.platform, ...(names ? { stageNames: names } : {}) })
  const unknownFilter = (opts.noCacheFilter ?? []).filter((n) => !opts.stages || !Object.hasOwn(opts.stages, n))
  if (unknownFilter.length > 0) {
    const known = Object.keys(opts.stages ?? {}).filter((k) => !/^\d+$/.test(k))
    throw new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `noCacheFilter: no stage named ${unknownFilter.join(', ')} (stages: ${known.join(', ') || 'none named'})`, { stage: unknownFilter[0] })
  }
  requireGraphEntitlements(graph, resolved.allow)

  // The first step that fails for its own reason (not a sibling cancelled after it) is the one named.
  const onProgress = opts.onProgress
  const emit = (e: ProgressEvent): void => {
    if (e.type === 'error' && at.step === undefined && !(isImagesmithError(e.error) && e.error.code === ErrorCodes.ABORTED)) {
      at.step = e.description
      at.vertex = e.vertex
      const source = graph.vertices.find((v) => v.id === e.vertex)?.meta.source
      if (source) at.source = source
    }
    onProgress?.(e)
  }

  const { state, cacheHits, vertices, schedule } = await solverFor(graph, { runtime: opts.runtime, network: resolved.network }, solve)(
    graph,
    executors,
    {
      store,
      contextDir: resolved.contextDir,
      ...(opts.dockerignore !== undefined ? { dockerignore: resolve(opts.dockerignore) } : {}),
      epoch: resolved.epoch,
      clampRunMtimes: resolved.clampRunMtimes,
      created: resolved.created,
      platform: resolved.platform,
      noCache: opts.noCache ?? false,
      ...(opts.noCacheFilter?.length ? { noCacheFilter: opts.noCacheFilter.map((n) => names!.get(opts.stages![n]!.toStage())!) } : {}),
      compression: opts.compression ?? 'gzip',
      secrets,
      network: resolved.network,
      allow: resolved.allow,
      ssh: resolved.ssh,
      ...(settings ? { runSettings: settings } : {}),
      runtime: opts.runtime,
      signal: opts.signal,
      registry,
      resolveBase,
      emit,
    },
    { concurrency: opts.concurrency },
  )
  throwIfAborted(opts.signal)
  at.step = undefined
  at.vertex = undefined
  at.source = undefined
  const config = labels ? { ...state.config, config: { ...state.config.config, Labels: { ...state.config.config?.Labels, ...labels } } } : state.config
  const image = await finalizeImage(store.blobs, config, state.layers, annotations?.manifest)
  // Named before exporting: a later build's FROM finds it even when the export fails or there is none.
  const named = new Date()
  for (const t of tags) await nameImage(store, t, image, named)

  let exported: ExportResult | undefined
  if (opts.output) {
    at.phase = 'export'
    const ctx: ExportContext = { blobs: store.blobs, tags, epoch: resolved.epoch, signal: opts.signal, dockerHost: resolved.dockerHost, registry: resolved.registry, bases: registry.bases, ...(annotations ? { annotations } : {}) }
    exported = await exportArtifact(image, opts.output, ctx)
  }
  return {
    digest: image.manifestDigest,
    manifest: image.manifest,
    config: image.config,
    configDigest: image.configDigest,
    layers: image.layers,
    cacheHits,
    vertices,
    schedule,
    output: exported?.path,
    ...(exported?.ref !== undefined ? { ref: exported.ref } : {}),
    ...(exported?.pushed !== undefined ? { pushed: exported.pushed } : {}),
    bases: registry.bases,
  }
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
