import { resolve } from 'node:path'
import PQueue from 'p-queue'
import { ErrorCodes, ImagesmithError, isImagesmithError, throwIfAborted } from '../errors.js'
import { stageNamesOf } from '../graph/stage-labels.js'
import { executors } from '../ops/table.js'
import { baseResolver } from '../sources/base.js'
import { baseKey, baseTriggers, lowerTriggers } from '../pipeline/onbuild.js'
import { exportArtifact } from '../exporters/table.js'
import type { ExportContext, ExportResult } from '../exporters/exporter.js'
import { finalizeImage, finalizeIndex } from '../artifacts/finalize.js'
import type { Artifact, IndexImage } from '../artifacts/artifact.js'
import { compileOutputs } from '../graph/compile.js'
import { DEFAULT_OUTPUT } from '../graph/node.js'
import { formatPlatform, hostPlatform } from '../oci/platform.js'
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
import { checkCacheExports, checkCacheImports } from '../cache-share/options.js'
import { remoteFetchers } from '../cache-share/remote-fetch.js'
import { refusedLayerOf } from '../cache/sharing.js'
import { exportCaches, openCacheShare, withInlineCache, type CacheShare } from '../cache-share/session.js'

/** Imported layers a build refuses (and solves again without) before a corrupt one fails it. */
const MAX_REFUSED_LAYERS = 8

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
  const cacheFrom = checkCacheImports(opts.cacheFrom)
  const cacheTo = checkCacheExports(opts.cacheTo)
  const store = Store.shared(resolved.cacheDir)
  // The lease ends with the build, whatever happened: what it held becomes prunable (and "used now").
  req.onFinally(() => store.lease.release())
  await store.init()
  // Before the first lookup: a prune in another process skips what this build holds (store/lease.ts).
  await store.lease.begin()
  throwIfAborted(opts.signal)
  // Idle keep-alive sockets do not hold the process open: the client needs no close.
  const registry = new PullSession(new RegistryClient(resolved.registry))
  // Layers an imported cache answered for (in this build or an earlier one) are fetched when read.
  store.blobs.remote.use(remoteFetchers(registry.client, store.blobs))
  // Imported caches are read (manifests and configs) before the solve; a step's blob only on its hit.
  const share: CacheShare | undefined = cacheFrom.length > 0 || cacheTo.length > 0 ? await openCacheShare(cacheFrom, store, registry.client, resolved.platform, opts.signal) : undefined
  // Base configs are read before compiling: their ONBUILD triggers become steps after their FROM.
  at.phase = 'solve'
  const resolveBase = baseResolver({ store, platform: resolved.platform, signal: opts.signal, registry, pull: opts.pull ?? false })
  const platforms = resolved.platforms
  const multi = platforms.length > 1
  // One target per platform (a Dockerfile's differ by their automatic ARGs), compiled into one graph:
  // a step two platforms share (a BUILD_PLATFORM stage's) is one vertex, solved once.
  const targets = platforms.map((platform) => {
    const given = opts.targetFor && multi ? opts.targetFor(formatPlatform(platform)) : { target: req.target, stages: opts.stages }
    let stage = given.target.toStage()
    let names = given.stages ? stageNamesOf(given.stages) : undefined
    if (req.contexts) {
      const applied = applyNamedContexts(stage, req.contexts, names)
      stage = applied.stage
      if (names) names = new Map([...names].map(([s, n]) => [applied.replaced.get(s) ?? s, n]))
    }
    return { platform, stage, names, stages: given.stages }
  })
  const names = targets[0]!.names
  const buildPlatform = hostPlatform()
  const triggerLists = await Promise.all(targets.map((t) => baseTriggers(t.stage, resolveBase, (ref) => {
    at.step = `FROM ${ref}`
  }, { platform: t.platform, buildPlatform })))
  const triggers = new Map(triggerLists.flatMap((m) => [...m]))
  const allNames = new Map(targets.flatMap((t) => [...(t.names ?? [])]))
  const graph = compileOutputs(targets.map((t) => ({ name: DEFAULT_OUTPUT, stage: t.stage, platform: t.platform })), {
    ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}),
    ...(allNames.size > 0 ? { stageNames: allNames } : {}),
    buildPlatform,
    onBuild: { triggersOf: (ref, platform) => triggers.get(baseKey(ref, platform ?? resolved.platform)) ?? [], lower: lowerTriggers },
  })
  const unknownFilter = (opts.noCacheFilter ?? []).filter((n) => !opts.stages || !Object.hasOwn(opts.stages, n))
  if (unknownFilter.length > 0) {
    const known = Object.keys(opts.stages ?? {}).filter((k) => !/^\d+$/.test(k))
    throw new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `noCacheFilter: no stage named ${unknownFilter.join(', ')} (stages: ${known.join(', ') || 'none named'})`, { stage: unknownFilter[0] })
  }
  requireGraphEntitlements(graph, resolved.allow)
  requireEmulation(runPlatforms(graph, resolved.platform))

  // The first step that fails for its own reason (not a sibling cancelled after it) is the one named.
  const onProgress = opts.onProgress
  const byVertex = multi ? new Map(graph.vertices.map((v) => [v.id, v])) : undefined
  const emit = (e: ProgressEvent): void => {
    // A multi-platform build's steps say their platform, as buildx shows them: `[linux/arm64] RUN …`.
    if (byVertex && 'description' in e) {
      const p = byVertex.get(e.vertex)?.platform
      if (p) e = { ...e, description: `[${formatPlatform(p)}] ${e.description}` }
    }
    if (e.type === 'error' && at.step === undefined && !(isImagesmithError(e.error) && e.error.code === ErrorCodes.ABORTED)) {
      at.step = e.description
      at.vertex = e.vertex
      const source = graph.vertices.find((v) => v.id === e.vertex)?.meta.source
      if (source) at.source = source
    }
    onProgress?.(e)
  }

  const solveOnce = () => solverFor(graph, { runtime: opts.runtime, network: resolved.network }, solve)(
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
      ...(opts.noCacheFilter?.length ? { noCacheFilter: opts.noCacheFilter.map((n) => names!.get(targets[0]!.stages![n]!.toStage())!) } : {}),
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
      ...(share ? { cache: share.backend } : {}),
      emit,
    },
    { concurrency: opts.concurrency },
  )
  // A hit layer an imported cache sent other bytes for is found when something first reads it: a
  // step (its snapshot), or an output that writes every byte (all but a registry push, which mounts
  // or skips a layer before reading it), whose layers are fetched here. The layer is refused and
  // the solve runs again, rebuilding the steps it answered (everything else now hits in the
  // store). Bounded: each retry refuses one more layer.
  const fetchOutputLayers = async (outs: Awaited<ReturnType<typeof solveOnce>>['outputs']) => {
    if (!share || !opts.output || opts.output.type === 'registry') return
    const queue = new PQueue({ concurrency: 4 })
    const digests = new Set(outs.flatMap((o) => o.state.layers.map((l) => l.digest)))
    // Settled, not raced: a fetch that fails has removed its temp before the build reports it.
    const failures = (await Promise.allSettled([...digests].map((d) => queue.add(() => store.blobs.ensure(d, opts.signal))))).flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []))
    if (failures.length > 0) throw failures.find((e) => refusedLayerOf(e)) ?? failures[0]
  }
  let solved: Awaited<ReturnType<typeof solveOnce>> | undefined
  for (let refusals = 0; !solved; ) {
    try {
      const got = await solveOnce()
      await fetchOutputLayers(got.outputs)
      solved = got
    } catch (e) {
      const refused = share ? refusedLayerOf(e) : undefined
      if (!refused || refusals++ >= MAX_REFUSED_LAYERS || !share!.backend.refuse(refused.digest, refused.why, refused.source)) throw e
      at.step = undefined
      at.vertex = undefined
      at.source = undefined
    }
  }
  const { outputs, cacheHits, vertices, schedule } = solved
  throwIfAborted(opts.signal)
  at.step = undefined
  at.vertex = undefined
  at.source = undefined
  const labels = req.labels
  const annotations = req.annotations
  const images: IndexImage[] = []
  const inline = cacheTo.some((c) => c.type === 'inline')
  for (const { state, platform } of outputs) {
    const labelled = labels ? { ...state.config, config: { ...state.config.config, Labels: { ...state.config.config?.Labels, ...labels } } } : state.config
    const config = share && inline ? withInlineCache(labelled, share, state.layers) : labelled
    const p = platform ?? resolved.platform
    // A multi-platform build's manifest annotations are per platform (`manifest[linux/arm64]:k=v`).
    const manifestAnnotations = annotations?.multi ? annotations.multi.platforms[formatPlatform(p)]?.manifest : annotations?.manifest
    images.push({ platform: p, image: await finalizeImage(store.blobs, config, state.layers, manifestAnnotations) })
  }
  const image = images[0]!.image
  const multiAnnotations = annotations?.multi
  const artifact: Artifact = multi
    ? await finalizeIndex(store.blobs, images, multiAnnotations?.index, multiAnnotations ? (p) => multiAnnotations.platforms[formatPlatform(p)]?.descriptor : undefined)
    : image
  // Named before exporting: a later build's FROM finds it even when the export fails or there is none.
  const named = new Date()
  for (const t of tags) await nameImage(store, t, artifact, named)

  let exported: ExportResult | undefined
  if (opts.output) {
    at.phase = 'export'
    // Imported registry caches are bases too: a push to their registry mounts a hit layer from the cache's repository.
    const bases = [...registry.bases, ...(share?.bases ?? [])]
    const ctx: ExportContext = { blobs: store.blobs, tags, epoch: resolved.epoch, signal: opts.signal, dockerHost: resolved.dockerHost, registry: resolved.registry, bases, ...(annotations ? { annotations } : {}) }
    exported = await exportArtifact(artifact, opts.output, ctx)
  }
  let cacheExported: Awaited<ReturnType<typeof exportCaches>> = []
  if (share && cacheTo.length > 0) {
    at.phase = 'export'
    const finalLayers = new Set(images.flatMap((i) => i.image.layers.map((l) => l.digest)))
    cacheExported = await exportCaches(cacheTo, share, finalLayers, store, registry.client, opts.signal)
  }
  return {
    digest: artifact.manifestDigest,
    ...(artifact.kind === 'index'
      ? {
          index: artifact.manifest,
          images: artifact.images.map(({ platform, image: i }) => ({ platform: formatPlatform(platform), digest: i.manifestDigest, manifest: i.manifest, config: i.config, configDigest: i.configDigest, layers: i.layers })),
        }
      : {}),
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
    ...(share ? { cache: { imported: share.backend.imported, exported: cacheExported, warnings: share.warnings } } : {}),
  }
}
