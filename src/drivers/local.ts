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
import { solve, type SolvedOutput } from '../solver/solve.js'
import { solverFor } from '../rootless/solve-in-namespace.js'
import { Store } from '../store/store.js'
import { checkBudget } from '../insight/budget.js'
import { zstdArtifact } from '../artifacts/recompress.js'
import { nameImage } from '../store/local-images.js'
import type { BuildOptions, LocalBuildResult } from '../pipeline/options.js'
import { requireGraphEntitlements } from '../pipeline/entitlements.js'
import { requireEmulation, runPlatforms } from '../ops/platform-support.js'
import { applyNamedContexts } from '../pipeline/named-contexts.js'
import type { ProgressEvent } from '../solver/types.js'
import { RegistryClient } from '../registry/client.js'
import { PullSession } from '../registry/pull.js'
import type { BuildPosition, Driver, DriverRequest } from './driver.js'
import type { AnyVertex, Graph } from '../graph/node.js'
import type { Platform } from '../oci/types.js'
import { deepFreeze } from '../util/freeze.js'
import { checkCacheExports, checkCacheImports, type CacheExportSpec } from '../cache-share/options.js'
import { exportCaches, openCacheShare, withInlineCache, type CacheShare } from '../cache-share/session.js'
import { remoteFetchers } from '../cache-share/remote-fetch.js'
import { refusedLayerOf } from '../cache/sharing.js'
import { attestationsFor } from './attestations.js'
import { baseLayerCount } from './base-layers.js'
import { takeTreeProbe } from '../context/tree-probe.js'

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
  const results = await solveLocally([{ name: DEFAULT_OUTPUT, request: req }], req.position, false)
  return results.get(DEFAULT_OUTPUT)!
}

/** One target of a local bake: its name (its graph outputs' name) and its checked request. */
export interface LocalTarget {
  readonly name: string
  readonly request: DriverRequest
}

/** Where a bake failed: the build position, and the targets whose outputs needed the failing step. */
export interface BakePosition extends BuildPosition {
  targets?: readonly string[]
}

/**
 * Many targets in one solve: every target × platform a named output of one graph (a step two targets
 * share is one vertex, run once), one queue and one set of pools; then each target finalized, named
 * and exported as its own build would be. What the solve shares (store, context, secrets, network,
 * runtime, no-cache) is the first request's: the caller gives every target the same. The first failure
 * cancels the rest (the solver's rule); `at.targets` then names the targets that needed the failed step.
 */
export async function bakeLocally(targets: readonly LocalTarget[], at: BakePosition): Promise<ReadonlyMap<string, LocalBuildResult>> {
  return solveLocally(targets, at, true)
}

async function solveLocally(entries: readonly LocalTarget[], at: BakePosition, labelled: boolean): Promise<Map<string, LocalBuildResult>> {
  const first = entries[0]!.request
  const { opts, resolved } = first
  const startedOn = new Date().toISOString()
  // A solve imports every target's caches (an import only answers lookups); each target exports its own.
  const cacheTo = new Map(entries.map((e) => [e.name, checkCacheExports(e.request.opts.cacheTo)]))
  const cacheFrom = [...new Map(entries.flatMap((e) => checkCacheImports(e.request.opts.cacheFrom)).map((c) => [JSON.stringify(c), c])).values()]
  const store = Store.shared(resolved.cacheDir)
  // The lease ends with the build, whatever happened: what it held becomes prunable (and "used now").
  first.onFinally(() => store.lease.release())
  await store.init()
  // Before the first lookup: a prune in another process skips what this build holds (store/lease.ts).
  await store.lease.begin()
  throwIfAborted(opts.signal)
  // Idle keep-alive sockets do not hold the process open: the client needs no close.
  const registry = new PullSession(new RegistryClient(resolved.registry))
  // Layers an imported cache answered for (in this build or an earlier one) are fetched when read.
  store.blobs.remote.use(remoteFetchers(registry.client, store.blobs))
  // Imported caches are read (manifests and configs) before the solve; a step's blob only on its hit.
  const share: CacheShare | undefined = cacheFrom.length > 0 || [...cacheTo.values()].some((c) => c.length > 0) ? await openCacheShare(cacheFrom, store, registry.client, resolved.platform, opts.signal) : undefined
  // Base configs are read before compiling: their ONBUILD triggers become steps after their FROM.
  at.phase = 'solve'
  const resolveBase = baseResolver({ store, platform: resolved.platform, signal: opts.signal, registry, pull: opts.pull ?? false })
  const buildPlatform = hostPlatform()
  const compiled: CompiledTarget[] = []
  for (const entry of entries) {
    // A base that cannot be resolved, or a bad stage filter, is the target being compiled's failure.
    if (labelled) at.targets = [entry.name]
    compiled.push(await compileTarget(entry, resolveBase, buildPlatform, at))
  }
  if (labelled) delete at.targets
  const graph = compiled.length === 1 ? compiled[0]!.graph : mergeGraphs(compiled.map((c) => c.graph))
  requireEmulation(runPlatforms(graph, resolved.platform))
  const noCacheFilter = compiled.flatMap((c) => c.noCacheFilter)

  // Which targets each vertex serves: a bake's progress lines and its failure name them.
  const owners = labelled ? vertexOwners(compiled) : undefined
  const multi = compiled.some((c) => c.multi)
  // The first step that fails for its own reason (not a sibling cancelled after it) is the one named.
  const onProgress = opts.onProgress
  const byVertex = new Map(graph.vertices.map((v) => [v.id, v]))
  const emit = (e: ProgressEvent): void => {
    if ('description' in e) {
      // A multi-platform build's steps say their platform, as buildx shows them: `[linux/arm64] RUN …`;
      // a bake's say their target first: `[web linux/arm64] RUN …`, `[api,web] RUN …` for a shared step.
      const p = multi ? byVertex.get(e.vertex)?.platform : undefined
      const names = owners?.get(e.vertex)
      const label = [names ? names.join(',') : undefined, p ? formatPlatform(p) : undefined].filter((x) => x !== undefined).join(' ')
      if (label) e = { ...e, description: `[${label}] ${e.description}` }
    }
    if (e.type === 'error' && at.step === undefined && !(isImagesmithError(e.error) && e.error.code === ErrorCodes.ABORTED)) {
      at.step = e.description
      at.vertex = e.vertex
      if (owners) at.targets = owners.get(e.vertex) ?? []
      const source = byVertex.get(e.vertex)?.meta.source
      if (source) at.source = source
    }
    onProgress?.(e)
  }

  const solver = solverFor(graph, { runtime: opts.runtime, network: resolved.network }, solve)
  // A rootless build's steps run in a worker process, which an imported cache (functions) cannot reach.
  if (solver !== solve && share && cacheFrom.length > 0) {
    share.warnings.push(`cache imports (${cacheFrom.map((c) => (c.type === 'registry' ? c.ref : c.src)).join(', ')}) are not read by a rootless build: its steps use the store's own cache`)
  }
  // A context COPY is checked against a listing of the tree first (context/tree-probe.ts): started now,
  // beside the base images' resolution, unless the CLI started it before it loaded the build script.
  // Only an in-process solve takes it: a rootless worker's context is plain data.
  const readsContext = solver === solve && graph.vertices.some((v) => v.kind === 'copy' && !v.spec.fromInput && v.spec.context === undefined && v.spec.sources.length > 0)
  const probe = readsContext ? takeTreeProbe(resolved.contextDir, opts.signal) : undefined
  const solveOnce = () => solver(
    graph,
    executors,
    {
      store,
      contextDir: resolved.contextDir,
      ...(probe ? { contextProbe: () => probe } : {}),
      ...(opts.dockerignore !== undefined ? { dockerignore: resolve(opts.dockerignore) } : {}),
      epoch: resolved.epoch,
      clampRunMtimes: resolved.clampRunMtimes,
      created: resolved.created,
      platform: resolved.platform,
      noCache: opts.noCache ?? false,
      ...(noCacheFilter.length > 0 ? { noCacheFilter } : {}),
      compression: opts.compression ?? 'gzip',
      secrets: first.secrets,
      network: resolved.network,
      allow: resolved.allow,
      ssh: resolved.ssh,
      ...(first.runSettings ? { runSettings: first.runSettings } : {}),
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
  // A zstd push reads every layer too: each is recompressed before it is uploaded. So does an SBOM,
  // whatever the output (or none): it reads every file of the image.
  const readsLayers = (o: BuildOptions['output']) => o !== undefined && (o.type !== 'registry' || o.compression === 'zstd')
  const writesBytes = new Set(entries.filter((e) => readsLayers(e.request.opts.output) || e.request.resolved.attest?.sbom === true).map((e) => e.name))
  const fetchOutputLayers = async (outs: Awaited<ReturnType<typeof solveOnce>>['outputs']) => {
    if (!share || writesBytes.size === 0) return
    const queue = new PQueue({ concurrency: 4 })
    const digests = new Set(outs.filter((o) => writesBytes.has(o.name)).flatMap((o) => o.state.layers.map((l) => l.digest)))
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
      delete at.targets
    }
  }
  const { outputs, vertices, schedule, cacheHits } = solved
  throwIfAborted(opts.signal)
  at.step = undefined
  at.vertex = undefined
  at.source = undefined
  const results = new Map<string, LocalBuildResult>()
  for (const c of compiled) {
    if (labelled) at.targets = [c.name]
    const mine = compiled.length === 1 ? undefined : c.vertexIds
    const own = mine ? vertices.filter((v) => mine.has(v.vertex)) : vertices
    results.set(c.name, await finishTarget(c.request, outputs.filter((o) => o.name === c.name), {
      store, registry, at, share, cacheTo: cacheTo.get(c.name) ?? [], graph: c.graph, startedOn, resolveBase,
      vertices: own,
      schedule: mine ? schedule.filter((s) => mine.has(s.vertex)) : schedule,
      cacheHits: mine ? own.filter((v) => v.cached).length : cacheHits,
    }))
  }
  if (labelled) delete at.targets
  return results
}

interface CompiledTarget {
  readonly name: string
  readonly request: DriverRequest
  readonly graph: Graph
  readonly multi: boolean
  /** Every vertex the target's outputs reach. */
  readonly vertexIds: ReadonlySet<string>
  /** The vertex ids of the `noCacheFilter` stages' last steps. */
  readonly noCacheFilter: readonly string[]
}

/** One target's outputs (one per platform) compiled into a graph of its own; the bake merges them. */
async function compileTarget(entry: LocalTarget, resolveBase: ReturnType<typeof baseResolver>, buildPlatform: Platform, at: BakePosition): Promise<CompiledTarget> {
  const { name, request: req } = entry
  const { opts, resolved } = req
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
  const triggerLists = await Promise.all(targets.map((t) => baseTriggers(t.stage, resolveBase, (ref) => {
    at.step = `FROM ${ref}`
  }, { platform: t.platform, buildPlatform })))
  const triggers = new Map(triggerLists.flatMap((m) => [...m]))
  const allNames = new Map(targets.flatMap((t) => [...(t.names ?? [])]))
  const graph = compileOutputs(targets.map((t) => ({ name, stage: t.stage, platform: t.platform })), {
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
  return {
    name,
    request: req,
    graph,
    multi,
    vertexIds: new Set(graph.vertices.map((v) => v.id)),
    noCacheFilter: (opts.noCacheFilter ?? []).map((n) => names!.get(targets[0]!.stages![n]!.toStage())!),
  }
}

/** Graphs unioned: vertex ids are content-derived, so a step two targets share is one vertex; order stays inputs-first. */
function mergeGraphs(graphs: readonly Graph[]): Graph {
  const vertices = new Map<string, AnyVertex>()
  for (const g of graphs) for (const v of g.vertices) if (!vertices.has(v.id)) vertices.set(v.id, v)
  return deepFreeze({ vertices: [...vertices.values()], outputs: graphs.flatMap((g) => g.outputs) })
}

function vertexOwners(compiled: readonly CompiledTarget[]): Map<string, string[]> {
  const owners = new Map<string, string[]>()
  for (const c of compiled) for (const id of c.vertexIds) owners.set(id, [...(owners.get(id) ?? []), c.name])
  return owners
}

interface FinishContext {
  readonly store: Store
  readonly registry: PullSession
  readonly at: BuildPosition
  readonly vertices: LocalBuildResult['vertices']
  readonly schedule: LocalBuildResult['schedule']
  readonly cacheHits: number
  readonly share: CacheShare | undefined
  readonly cacheTo: readonly CacheExportSpec[]
  /** The target's own graph and the solve's start: its provenance. */
  readonly graph: Graph
  readonly startedOn: string
  /** The build's base resolver: which leading layers of an image are its base's. */
  readonly resolveBase: ReturnType<typeof baseResolver>
}

/** A target's solved outputs finalized into its image (or index), named in the store and exported. */
async function finishTarget(req: DriverRequest, outputs: readonly SolvedOutput[], f: FinishContext): Promise<LocalBuildResult> {
  const { opts, resolved, tags } = req
  const { store, registry, at, share, cacheTo } = f
  const multi = resolved.platforms.length > 1
  const labels = req.labels
  const annotations = req.annotations
  const images: IndexImage[] = []
  /** Leading layers each image (by manifest digest) has from its base image. */
  const baseLayers = new Map<string, number>()
  const zstdOut = opts.output && opts.output.type !== 'docker' && opts.output.compression === 'zstd' ? opts.output : undefined
  const inline = cacheTo.some((c) => c.type === 'inline')
  for (const { state, platform, vertex } of outputs) {
    const labelled = labels ? { ...state.config, config: { ...state.config.config, Labels: { ...state.config.config?.Labels, ...labels } } } : state.config
    const config = share && inline ? withInlineCache(labelled, share, state.layers) : labelled
    const p = platform ?? resolved.platform
    // A multi-platform build's manifest annotations are per platform (`manifest[linux/arm64]:k=v`).
    const manifestAnnotations = annotations?.multi ? annotations.multi.platforms[formatPlatform(p)]?.manifest : annotations?.manifest
    const image = await finalizeImage(store.blobs, config, state.layers, manifestAnnotations)
    images.push({ platform: p, image })
    if (zstdOut && !zstdOut.forceCompression) {
      baseLayers.set(image.manifestDigest, await baseLayerCount(f.graph, vertex, resolved.platform, state.layers, f.resolveBase))
    }
  }
  const multiAnnotations = annotations?.multi
  // Budgets are checked before anything is named or written: a build over budget leaves no output.
  if (opts.budget) {
    for (const { image: i } of images) await checkBudget(opts.budget, i, store.blobs)
  }
  // Attestations make an index even of one image: they sit beside the images they describe.
  const attest = (imgs: readonly IndexImage[]) => attestationsFor(req, { store, graph: f.graph, vertices: f.vertices, images: imgs, bases: registry.bases, startedOn: f.startedOn })
  const attestations = await attest(images)
  const artifact: Artifact = multi || attestations.length > 0
    ? await finalizeIndex(store.blobs, images, multiAnnotations?.index, multiAnnotations ? (p) => multiAnnotations.platforms[formatPlatform(p)]?.descriptor : undefined, attestations)
    : images[0]!.image
  // Named before exporting: a later build's FROM finds it even when the export fails or there is none.
  const named = new Date()
  for (const t of tags) await nameImage(store, t, artifact, named)

  let exported: ExportResult | undefined
  let shipped: Artifact = artifact
  if (opts.output) {
    const phase = at.phase
    at.phase = 'export'
    const out = opts.output
    // zstd is an output's choice: the store keeps gzip layers (and names the gzip artifact), the
    // output gets recompressed ones, the base image's kept as they are unless force-compression;
    // its attestations are made again so that their subjects are the zstd manifests.
    if (zstdOut) {
      shipped = await zstdArtifact(artifact, store.blobs, {
        ...(zstdOut.compressionLevel !== undefined ? { level: zstdOut.compressionLevel } : {}),
        keepLayers: (image) => baseLayers.get(image.manifestDigest) ?? 0,
        ...(attestations.length > 0 ? { attest } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      })
    }
    // Imported registry caches are bases too: a push to their registry mounts a hit layer from the cache's repository.
    const bases = [...registry.bases, ...(share?.bases ?? [])]
    const ctx: ExportContext = { blobs: store.blobs, tags, epoch: resolved.epoch, signal: opts.signal, dockerHost: resolved.dockerHost, registry: resolved.registry, bases, ...(annotations ? { annotations } : {}) }
    exported = await exportArtifact(shipped, out, ctx)
    at.phase = phase
  }
  let cacheExported: Awaited<ReturnType<typeof exportCaches>> = []
  if (share && cacheTo.length > 0) {
    const phase = at.phase
    at.phase = 'export'
    const finalLayers = new Set(images.flatMap((i) => i.image.layers.map((l) => l.digest)))
    cacheExported = await exportCaches(cacheTo, share, finalLayers, store, registry.client, opts.signal)
    at.phase = phase
  }
  const image = shipped.kind === 'index' ? shipped.images[0]!.image : shipped
  return {
    digest: shipped.manifestDigest,
    ...(shipped.kind === 'index'
      ? {
          index: shipped.manifest,
          images: shipped.images.map(({ platform, image: i }) => ({ platform: formatPlatform(platform), digest: i.manifestDigest, manifest: i.manifest, config: i.config, configDigest: i.configDigest, layers: i.layers })),
        }
      : {}),
    manifest: image.manifest,
    config: image.config,
    configDigest: image.configDigest,
    layers: image.layers,
    cacheHits: f.cacheHits,
    vertices: f.vertices,
    schedule: f.schedule,
    output: exported?.path,
    ...(exported?.ref !== undefined ? { ref: exported.ref } : {}),
    ...(exported?.pushed !== undefined ? { pushed: exported.pushed } : {}),
    bases: registry.bases,
    ...(share ? { cache: { imported: share.backend.imported, exported: cacheExported, warnings: share.warnings } } : {}),
  }
}
