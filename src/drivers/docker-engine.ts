/**
 * The build handed to an existing engine (`engine: { type: 'docker' }`, `--engine docker`): Docker
 * Engine's `POST /build?version=2` runs BuildKit inside dockerd with a tar context and no session;
 * Podman's compatible service runs buildah behind the same call. The graph is printed as a
 * multi-stage Dockerfile, local bases are loaded into the engine first, the engine's messages
 * become our progress events, and the image stays in the engine with its tags unless an output says
 * otherwise. What a sessionless build cannot carry fails before anything is sent.
 */
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { formatPlatform } from '../oci/platform.js'
import { parseImageName } from '../reference/reference.js'
import { Store } from '../store/store.js'
import type { StageDef } from '../graph/stage.js'
import type { RunSpec } from '../graph/nodes/run-node.js'
import { collectStages } from '../dockerfile/print-stages.js'
import type { BuildResult, EngineOptions } from '../pipeline/options.js'
import type { ProgressEvent } from '../solver/types.js'
import { describeEngine, parseEngineHost, type EngineEndpoint } from '../docker/engine-host.js'
import { asUnreachable, compareApi, engineCall, engineVersion, errorMessage, jsonMessages, readSmall } from '../docker/engine-api.js'
import { engineDockerfile, ENGINE_DOCKERFILE, localRefsOf, refuseUnsupported } from './engine-dockerfile.js'
import { engineContextTar } from './engine-context.js'
import { EngineProgress } from './engine-progress.js'
import { loadLocalBase, pushThroughEngine, saveFromEngine } from './engine-images.js'
import type { Driver, DriverRequest } from './driver.js'
import type { RunSettings } from '../pipeline/run-settings.js'

/** `POST /build?version=2` (BuildKit) came with API 1.39 (Docker 18.09). */
export const MIN_ENGINE_API = '1.39'

export const dockerEngineDriver: Driver = {
  name: 'docker-engine',
  build: buildOnEngine,
}

async function buildOnEngine(req: DriverRequest): Promise<BuildResult> {
  const { opts, resolved, tags, position: at } = req
  const engine = checkEngineOptions(opts.engine)
  const endpoint = parseEngineHost(engine.host ?? resolved.dockerHost, resolved.engineTls)
  // Everything the engine cannot take is refused here, before a byte is sent.
  const stage = req.target.toStage()
  if (req.contexts && req.contexts.size > 0) {
    const name = [...req.contexts.keys()][0]!
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, `build context ${name}: a second named context cannot be handed to an engine's /build (it receives one context tar); build it locally (without --engine)`, { step: `--build-context ${name}`, feature: 'named context' })
  }
  if (resolved.platforms.length > 1) {
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, `several platforms (${resolved.platforms.map(formatPlatform).join(', ')}): an engine's image store takes one image per tag; build one platform per call, or build locally`, { feature: 'multi-platform', platforms: resolved.platforms.map(formatPlatform) })
  }
  if (opts.noCacheFilter && opts.noCacheFilter.length > 0) {
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, 'noCacheFilter (--no-cache-filter) has no /build parameter; use noCache (--no-cache) or build locally', { feature: 'no-cache-filter' })
  }
  // dockerd 20.10's BuildKit takes `ulimits` and `shmsize` and ignores them (measured: nofile and
  // /dev/shm stay the daemon's); refused rather than silently dropped.
  if (req.runSettings && (req.runSettings.ulimits.length > 0 || req.runSettings.shmSize !== undefined)) {
    const feature = req.runSettings.ulimits.length > 0 ? 'ulimits' : 'shm-size'
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, `${feature} (--${feature === 'ulimits' ? 'ulimit' : 'shm-size'}): the engine's BuildKit ignores it for /build; set it on the daemon (--default-ulimit, default-shm-size) or build locally`, { feature })
  }
  if (req.annotations) {
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, 'annotations (--annotation) have no /build parameter: the engine writes its own manifest', { feature: 'annotations' })
  }
  // dockerd's sessionless /build takes no attestation request, and our SBOM/provenance are made from a local solve.
  if (resolved.attest) {
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, 'attestations (--sbom / --provenance / --attest) are made by a local build; an engine\'s /build writes its own image without them', { feature: 'attestations' })
  }
  if (opts.budget) {
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, 'budget (--budget) is checked from the layers a local build writes; an engine\'s layers are its own', { feature: 'budget' })
  }
  if (opts.output && opts.output.type !== 'docker' && opts.output.compression === 'zstd') {
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, 'compression=zstd: the image comes back from the engine as it wrote it (gzip); build locally for zstd layers', { feature: 'compression' })
  }
  // The engine's BuildKit reads only its own cache format (keys from its LLB), never ours.
  if ((opts.cacheFrom?.length ?? 0) > 0 || (opts.cacheTo?.length ?? 0) > 0) {
    const feature = (opts.cacheFrom?.length ?? 0) > 0 ? 'cache-from' : 'cache-to'
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, `${feature} (--${feature}): imagesmith's shared cache cannot be read or written by an engine's BuildKit; give the engine an image to reuse with --engine docker,cache-from=REF, or build locally`, { feature })
  }
  refuseUnsupported(stage)
  requireStepEntitlements(stage, resolved.allow)
  const output = opts.output
  if (output && output.type === 'oci-layout') {
    throw new ImagesmithError(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED, 'the oci-layout output cannot come back from an engine: use -o type=oci,dest=… (an archive), the registry output or leave the image in the engine', { feature: 'output oci-layout', output: 'oci-layout' })
  }
  if (output?.type === 'docker' && output.host !== undefined && describeEngine(parseEngineHost(output.host, resolved.engineTls)) !== describeEngine(endpoint)) {
    throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, `the image is built in the engine at ${describeEngine(endpoint)}, not in ${output.host}: drop the docker output's host, or write -o type=oci,dest=… and load that`, { output: 'docker', host: output.host })
  }
  if (output?.type === 'registry' && tags.length === 0) {
    throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, 'pushing through the engine needs at least one tag (-t)', { output: 'registry' })
  }
  const localRefs = localRefsOf(stage)

  at.phase = 'solve'
  const where = describeEngine(endpoint)
  const version = await engineVersion(endpoint, opts.signal)
  if (compareApi(version.apiVersion, MIN_ENGINE_API) < 0) {
    throw new ImagesmithError(
      ErrorCodes.ENGINE_API_TOO_OLD,
      `the engine at ${where} speaks API ${version.apiVersion}; handing it a build needs API ${MIN_ENGINE_API} or newer (Docker 18.09+, BuildKit's /build?version=2)`,
      { host: where, apiVersion: version.apiVersion, needed: MIN_ENGINE_API },
    )
  }
  const api = `/v${version.apiVersion}`
  // Only a build with local bases or a local output needs the store.
  const needsStore = localRefs.length > 0 || output?.type === 'oci'
  let store: Store | undefined
  if (needsStore) {
    store = Store.shared(resolved.cacheDir)
    req.onFinally(() => store!.lease.release())
    await store.init()
    await store.lease.begin()
  }
  const loaded = new Map<string, string>()
  for (const ref of localRefs) {
    at.step = `FROM ${ref}`
    loaded.set(ref, await loadLocalBase(endpoint, ref, { store: store!, platform: resolved.platform, epoch: resolved.epoch, api, ...(opts.signal ? { signal: opts.signal } : {}) }))
  }
  at.step = undefined
  const dockerfile = engineDockerfile(stage, loaded)
  throwIfAborted(opts.signal)

  const emit = (e: ProgressEvent): void => opts.onProgress?.(e)
  const progress = new EngineProgress(emit)
  const query = buildQuery(opts, engine, tags, {
    network: resolved.network,
    ...(req.labels ? { labels: req.labels } : {}),
    ...(req.runSettings ? { runSettings: req.runSettings } : {}),
    ...(opts.platform !== undefined || opts.platforms !== undefined ? { platform: formatPlatform(resolved.platform) } : {}),
    // A forced pull would look for the loaded bases' names in a registry, where they are not.
    pull: opts.pull === true && loaded.size === 0,
  })
  const body = engineContextTar({ contextDir: resolved.contextDir, ...(opts.dockerignore !== undefined ? { dockerignore: opts.dockerignore } : {}), dockerfile, epoch: resolved.epoch })
  const res = await engineCall(endpoint, { method: 'POST', path: `${api}/build?${query}`, body, ...(opts.signal ? { signal: opts.signal } : {}) })
  if ((res.statusCode ?? 0) !== 200) {
    const message = errorMessage(await readSmall(res))
    throw new ImagesmithError(ErrorCodes.ENGINE_FAILED, `the engine at ${where} refused the build: HTTP ${res.statusCode}: ${message}`, { host: where, status: res.statusCode, message })
  }
  try {
    for await (const m of jsonMessages(res)) progress.handle(m)
  } catch (e) {
    throwIfAborted(opts.signal)
    throw asUnreachable(e, endpoint)
  }
  progress.finish()
  if (progress.failure) throw buildFailure(progress.failure, where)
  const id = progress.imageId
  if (!id) throw new ImagesmithError(ErrorCodes.ENGINE_FAILED, `the engine at ${where} ended the build without an image id`, { host: where })

  at.phase = 'export'
  let written: string | undefined
  if (output?.type === 'registry') await pushThroughEngine(endpoint, tags, resolved.registry, api, opts.signal)
  if (output?.type === 'oci') {
    const r = await saveFromEngine(endpoint, id, output.dest, { store: store!, platform: resolved.platform, epoch: resolved.epoch, tags, api, ...(opts.signal ? { signal: opts.signal } : {}) })
    written = r.path
  }
  const first = tags[0]
  return {
    // The engine names an image by its config digest; its manifest is made only when it is pushed or saved.
    digest: id as BuildResult['digest'],
    configDigest: id as BuildResult['digest'],
    ...(written !== undefined ? { output: written } : {}),
    ...(first !== undefined ? { ref: parseImageName(first).familiar } : {}),
  }
}

function checkEngineOptions(engine: EngineOptions | undefined): EngineOptions {
  if (!engine || typeof engine !== 'object' || engine.type !== 'docker') {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `engine must be { type: 'docker', host? }, got ${JSON.stringify(engine)}`, { option: 'engine' })
  }
  if (engine.host !== undefined && (typeof engine.host !== 'string' || engine.host === '')) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, 'engine.host must be a non-empty string', { option: 'engine.host' })
  }
  if (engine.cacheFrom !== undefined && (!Array.isArray(engine.cacheFrom) || engine.cacheFrom.some((c) => typeof c !== 'string'))) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, 'engine.cacheFrom must be a list of image names', { option: 'engine.cacheFrom' })
  }
  return engine
}

/** As for a local build: a RUN step's `network: 'host'` or `security: 'insecure'` needs its entitlement. */
function requireStepEntitlements(target: StageDef, allow: readonly string[]): void {
  for (const { def } of collectStages(target).order) {
    for (const step of def.steps) {
      if (step.kind !== 'run') continue
      const spec = step.spec as RunSpec
      const need = [...(spec.network === 'host' ? ['network.host'] : []), ...(spec.security === 'insecure' ? ['security.insecure'] : [])]
      for (const entitlement of need) {
        if (allow.includes(entitlement)) continue
        const text = step.meta.description
        throw new ImagesmithError(ErrorCodes.ENTITLEMENT_REQUIRED, `${text} needs the ${entitlement} entitlement, which this build does not allow (allow: ['${entitlement}'], --allow ${entitlement})`, { entitlement, step: text })
      }
    }
  }
}

interface QueryParts {
  readonly network: 'default' | 'none' | 'host'
  readonly labels?: Readonly<Record<string, string>>
  readonly runSettings?: RunSettings
  readonly platform?: string
  readonly pull: boolean
}

/** The /build query, as the docker CLI writes it (JSON for maps and lists). */
function buildQuery(opts: DriverRequest['opts'], engine: EngineOptions, tags: readonly string[], p: QueryParts): string {
  const q = new URLSearchParams({ version: '2', dockerfile: ENGINE_DOCKERFILE, rm: '1', forcerm: '1' })
  for (const t of tags) q.append('t', t)
  if (opts.buildArgs && Object.keys(opts.buildArgs).length > 0) q.set('buildargs', JSON.stringify(opts.buildArgs))
  if (p.labels) q.set('labels', JSON.stringify(p.labels))
  if (p.platform) q.set('platform', p.platform)
  q.set('networkmode', p.network)
  if (opts.noCache) q.set('nocache', '1')
  if (engine.cacheFrom && engine.cacheFrom.length > 0) q.set('cachefrom', JSON.stringify(engine.cacheFrom))
  if (p.pull) q.set('pull', '1')
  const rs = p.runSettings
  if (rs && rs.extraHosts.length > 0) q.set('extrahosts', rs.extraHosts.map((h) => `${h.host}:${h.ip}`).join(','))
  return q.toString()
}

/** A RUN that exited non-zero is RUN_FAILED with its step and exit code; anything else ENGINE_FAILED. */
function buildFailure(f: { message: string; step?: string; exitCode?: number; outputTail?: string }, where: string): ImagesmithError {
  const details = { host: where, message: f.message, ...(f.step ? { step: f.step } : {}), ...(f.outputTail ? { outputTail: f.outputTail } : {}) }
  if (f.exitCode !== undefined) {
    return new ImagesmithError(ErrorCodes.RUN_FAILED, `${f.step ?? 'a step'} exited with code ${f.exitCode} on the engine at ${where}: ${f.message}`, { ...details, exitCode: f.exitCode })
  }
  return new ImagesmithError(ErrorCodes.ENGINE_FAILED, `the engine at ${where} failed the build${f.step ? ` in ${f.step}` : ''}: ${f.message}`, details)
}

export type { EngineEndpoint }
