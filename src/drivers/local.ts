import { resolve } from 'node:path'
import { ErrorCodes, ImagesmithError, isImagesmithError, throwIfAborted } from '../errors.js'
import { ImageBuilder } from '../builder/image-builder.js'
import { stageNamesOf } from '../graph/stage-labels.js'
import { executors } from '../ops/table.js'
import { baseResolver } from '../sources/base.js'
import { baseTriggers, lowerTriggers } from '../pipeline/onbuild.js'
import { exportArtifact } from '../exporters/table.js'
import type { ExportContext, ExportResult } from '../exporters/exporter.js'
import { finalizeImage } from '../artifacts/finalize.js'
import { solve } from '../solver/solve.js'
import { solverFor } from '../rootless/solve-in-namespace.js'
import { Store } from '../store/store.js'
import { nameImage } from '../store/local-images.js'
import type { LocalBuildResult } from '../pipeline/options.js'
import { requireGraphEntitlements } from '../pipeline/entitlements.js'
import { requireEmulation, runPlatforms } from '../ops/platform-support.js'
import { applyNamedContexts } from '../pipeline/named-contexts.js'
import type { ProgressEvent } from '../solver/types.js'
import { RegistryClient } from '../registry/client.js'
import { PullSession } from '../registry/pull.js'
import type { Driver, DriverRequest } from './driver.js'

/**
 * The build on this machine: the store (shared by every build of this process on one cache dir),
 * base images resolved once per build, ONBUILD triggers lowered, the graph solved, the image
 * finalized, named in the store and exported.
 */
export const localDriver: Driver & { build(request: DriverRequest): Promise<LocalBuildResult> } = {
  name: 'local',
  build: buildLocally,
}

async function buildLocally(req: DriverRequest): Promise<LocalBuildResult> {
  const { opts, resolved, tags, position: at } = req
  const store = Store.shared(resolved.cacheDir)
  // The lease ends with the build, whatever happened: what it held becomes prunable (and "used now").
  req.onFinally(() => store.lease.release())
  await store.init()
  // Before the first lookup: a prune in another process skips what this build holds (store/lease.ts).
  await store.lease.begin()
  throwIfAborted(opts.signal)
  // Idle keep-alive sockets do not hold the process open: the client needs no close.
  const registry = new PullSession(new RegistryClient(resolved.registry))
  // Base configs are read before compiling: their ONBUILD triggers become steps after their FROM.
  at.phase = 'solve'
  const resolveBase = baseResolver({ store, platform: resolved.platform, signal: opts.signal, registry, pull: opts.pull ?? false })
  let target = req.target
  let names = opts.stages ? stageNamesOf(opts.stages) : undefined
  if (req.contexts) {
    const applied = applyNamedContexts(target.toStage(), req.contexts, names)
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
  requireEmulation(runPlatforms(graph, resolved.platform))

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
      secrets: req.secrets,
      network: resolved.network,
      allow: resolved.allow,
      ssh: resolved.ssh,
      ...(req.runSettings ? { runSettings: req.runSettings } : {}),
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
  const labels = req.labels
  const config = labels ? { ...state.config, config: { ...state.config.config, Labels: { ...state.config.config?.Labels, ...labels } } } : state.config
  const annotations = req.annotations
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
