import { join, resolve } from 'node:path'
import { parseImageName } from '../reference/reference.js'
import { parsePlatform } from '../oci/platform.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { BuildOptions, BuildResult, EngineOptions, LayerCompressionOptions, OutputSpec } from '../pipeline/options.js'
import type { SecretSource } from '../solver/types.js'
import { defaultCacheDir } from '../store/default-dir.js'
import type { ImageBuilder } from '../builder/image-builder.js'
import type { Budget } from '../insight/budget.js'
import { UsageError, assertKnownFlags, many, one, parseCsvPairs, type ParsedArgs } from './args.js'
import { buildArgs, flagCheck, script } from './build-inputs.js'
import { isDockerfileBuild, loadDockerfileBuild } from './build-dockerfile.js'
import { BUILDX_FLAGS, buildxOptions, writeIidFile } from './buildx-flags.js'
import { formatSize, parseBytes } from './format.js'
import type { Io } from './io.js'
import { loadBuildScript } from './load-script.js'
import { writeMetadataFile } from './metadata.js'
import { PROGRESS_MODES, progressMode, progressRenderer, withoutOutputTail } from './progress.js'
import { REGISTRY_FLAGS, registryFlags } from './registry-flags.js'
import { SUPPLY_FLAGS, supplyOptions } from './supply-flags.js'
import { probeContextEarly } from './early-probe.js'

/**
 * buildx's `compression=gzip|zstd|uncompressed`, `compression-level=N`, `force-compression=true`
 * and `oci-mediatypes` keys. zstd is only written with OCI media types (podman refuses zstd in a
 * Docker v2s2 manifest), and never for `type=docker`: Docker before 23.0 cannot load it, and a
 * gzip fallback would give the user something other than what was asked, so it is an error.
 */
function compressionKeys(kv: Map<string, string>, text: string, type: string | undefined): LayerCompressionOptions {
  const compression = kv.get('compression')
  if (compression === undefined || compression === 'gzip') {
    if (kv.has('compression-level') && compression === undefined) throw new UsageError(`--output ${text}: compression-level goes with compression=zstd`)
    return compression === 'gzip' ? { compression: 'gzip' } : {}
  }
  if (compression !== 'zstd') throw new UsageError(`--output ${text}: compression must be gzip or zstd${compression === 'uncompressed' || compression === 'estargz' ? ` (${compression} is not written yet)` : ''}`)
  if (type === 'docker') {
    throw new ImagesmithError(ErrorCodes.OUTPUT_COMPRESSION_UNSUPPORTED, `--output ${text}: zstd layers cannot go to type=docker (Docker before 23.0 cannot load them); use type=oci or type=oci-layout`, { output: 'docker', compression })
  }
  if (kv.get('oci-mediatypes') === 'false') throw new UsageError(`--output ${text}: compression=zstd needs oci-mediatypes (zstd in a Docker manifest is not a standard media type)`)
  const levelText = kv.get('compression-level')
  const level = levelText === undefined ? undefined : /^\d{1,2}$/.test(levelText) ? Number(levelText) : NaN
  if (level !== undefined && !(level >= 0 && level <= 22)) throw new UsageError(`--output ${text}: compression-level for zstd is 0–22`)
  const force = kv.get('force-compression')
  if (force !== undefined && force !== 'true' && force !== 'false') throw new UsageError(`--output ${text}: force-compression is true or false`)
  return { compression: 'zstd', ...(level !== undefined ? { compressionLevel: level } : {}), ...(force !== undefined ? { forceCompression: force === 'true' } : {}) }
}

export function parseOutput(text: string): OutputSpec {
  const kv = parseCsvPairs(text, '--output')
  const type = kv.get('type')
  const dest = kv.get('dest')
  const compression = compressionKeys(kv, text, type)
  if (type === 'docker') {
    // buildx: type=docker with a dest writes a tarball for `docker load`; without one it loads into the engine.
    if (dest) return { type: 'oci', dest }
    const host = kv.get('host')
    return host ? { type: 'docker', host } : { type: 'docker' }
  }
  if (type === 'registry' || (type === 'image' && kv.get('push') === 'true')) {
    const upload = kv.get('upload')
    if (upload !== undefined && upload !== 'auto' && upload !== 'monolithic' && upload !== 'chunked') throw new UsageError(`--output ${text}: upload must be auto, monolithic or chunked`)
    const chunk = kv.get('chunk-size')
    const chunkSize = chunk === undefined ? undefined : Number(chunk)
    if (chunkSize !== undefined && (!Number.isInteger(chunkSize) || chunkSize < 1)) throw new UsageError(`--output ${text}: chunk-size must be a positive number of bytes`)
    return { type: 'registry', ...(upload ? { upload } : {}), ...(chunkSize ? { chunkSize } : {}), ...compression }
  }
  if (!dest) throw new UsageError(`--output ${text}: dest=PATH is required`)
  if (type === 'oci') return kv.get('tar') === 'false' ? { type: 'oci-layout', dest, ...compression } : { type: 'oci', dest, ...compression }
  if (type === 'oci-layout') return { type: 'oci-layout', dest, ...compression }
  throw new UsageError(`--output ${text}: type must be oci, oci-layout, docker or registry`)
}

/** `-o`, or buildx's shorthands `--load` (= `-o type=docker`) and `--push` (= `-o type=registry`). */
function outputFlags(args: ParsedArgs): OutputSpec | undefined {
  const text = one(args, '--output')
  const load = args.flags.has('--load')
  const push = args.flags.has('--push')
  if ([text !== undefined, load, push].filter(Boolean).length > 1) throw new UsageError('give one of --output, --load and --push')
  if (load) return { type: 'docker' }
  if (push) return parseOutput('type=registry')
  return text === undefined ? undefined : parseOutput(text)
}

function parseSecret(text: string): [string, SecretSource] {
  const kv = parseCsvPairs(text, '--secret')
  const id = kv.get('id')
  if (!id) throw new UsageError(`--secret ${text}: id=ID is required`)
  const src = kv.get('src') ?? kv.get('source')
  const env = kv.get('env')
  if (src) return [id, { src }]
  if (env) return [id, { env }]
  // buildx: with neither, the env var named like the id, else a file named like the id.
  return [id, process.env[id] !== undefined ? { env: id } : { src: id }]
}

/** `--ssh default` (the agent at $SSH_AUTH_SOCK) or `--ssh ID=SOCKET`, as buildx takes it (one socket per id). */
function parseSsh(text: string): [string, string] {
  const eq = text.indexOf('=')
  const id = eq < 0 ? text : text.slice(0, eq)
  if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new UsageError(`--ssh ${text}: ID or ID=SOCKET expected`)
  const path = eq < 0 ? process.env.SSH_AUTH_SOCK : text.slice(eq + 1)
  if (!path) throw new UsageError(`--ssh ${text}: no socket given and SSH_AUTH_SOCK is not set`)
  if (path.includes(',')) throw new UsageError(`--ssh ${text}: one agent socket per id (key files are not supported)`)
  return [id, path]
}

/** `--engine docker[,host=H][,cache-from=REF]…`: the build handed to an existing Docker Engine (or Podman service). */
export function parseEngine(text: string): EngineOptions {
  const comma = text.indexOf(',')
  const type = (comma < 0 ? text : text.slice(0, comma)).trim()
  if (type !== 'docker') throw new UsageError(`--engine ${text}: the engine type must be docker (docker[,host=unix:///path|tcp://H:P|ssh://user@H])`)
  let host: string | undefined
  const cacheFrom: string[] = []
  if (comma >= 0) {
    for (const [k, v] of parseCsvPairs(text.slice(comma + 1), '--engine')) {
      if (k === 'host' && v !== '') host = v
      else if (k === 'cache-from' && v !== '') cacheFrom.push(v)
      else throw new UsageError(`--engine ${text}: unknown or empty key ${k} (host, cache-from)`)
    }
  }
  return { type: 'docker', ...(host !== undefined ? { host } : {}), ...(cacheFrom.length > 0 ? { cacheFrom } : {}) }
}

/** Every flag `imagesmith build` takes (the README's synopsis lists each one). */
export const BUILD_FLAGS: readonly string[] = Object.freeze(['--context', '--file', '--tag', '--output', '--load', '--push', '--target', '--no-cache', '--no-cache-filter', '--metadata-file', '--progress', '--build-arg', '--secret', '--ssh', '--allow', '--platform', '--network', '--cache-dir', '--runtime', '--quiet', '--pull', '--engine', '--budget', ...REGISTRY_FLAGS, ...BUILDX_FLAGS, ...SUPPLY_FLAGS])

export async function buildCommand(args: ParsedArgs, io: Io, signal?: AbortSignal): Promise<number> {
  assertKnownFlags(args, BUILD_FLAGS)
  const dockerfile = isDockerfileBuild(args)
  const path = dockerfile ? '' : script(args)
  const progress = one(args, '--progress') ?? (args.flags.has('--quiet') ? 'quiet' : 'auto')
  if (!(PROGRESS_MODES as readonly string[]).includes(progress)) throw new UsageError(`--progress must be ${PROGRESS_MODES.join(', ')}`)
  const network = one(args, '--network')
  if (network !== undefined && network !== 'default' && network !== 'none' && network !== 'host') {
    throw new UsageError(`--network ${network} is not supported: a build's network is default, none or host`)
  }
  const allow = many(args, '--allow').flatMap((a) => a.split(','))
  for (const a of allow) if (a !== 'network.host' && a !== 'security.insecure') throw new UsageError(`--allow ${a}: network.host or security.insecure`)
  const ssh = Object.fromEntries(many(args, '--ssh').map(parseSsh))
  // A malformed --engine fails before the build script or Dockerfile is loaded.
  if (one(args, '--engine') !== undefined) parseEngine(one(args, '--engine')!)
  const output = outputFlags(args)
  const target = one(args, '--target')
  // The provenance's entryPoint: the build script, or the Dockerfile (none when it came on stdin).
  const file = one(args, '--file')
  const entryPoint = !dockerfile ? resolve(path) : file === '-' ? undefined : resolve(file ?? join(args.positionals[0] ?? '.', 'Dockerfile'))
  const supply = supplyOptions(args, { ...(entryPoint ? { path: entryPoint } : {}), ...(target ? { target } : {}) })
  const secrets = Object.fromEntries(many(args, '--secret').map(parseSecret))
  for (const t of many(args, '--tag')) flagCheck(() => parseImageName(t), '--tag')
  // `--platform a,b` or `--platform a --platform b`: several give an image index.
  const platformList = many(args, '--platform').flatMap((p) => p.split(','))
  for (const p of platformList) flagCheck(() => parsePlatform(p), '--platform')
  const platform = platformList[0]
  const platforms = platformList.length > 1 ? platformList : undefined
  probeContextEarly(args)
  const df = dockerfile
    ? await loadDockerfileBuild(args, { buildArgs: buildArgs(args), ...(platform !== undefined ? { platform } : {}), cacheDir: one(args, '--cache-dir') ?? defaultCacheDir(), stdin: process.stdin })
    : undefined
  const loaded = df ? { builder: df.imported.target, stages: df.imported.stages } : await loadBuildScript(path, one(args, '--target'), { cacheDir: one(args, '--cache-dir') ?? defaultCacheDir(), buildArgs: buildArgs(args) })
  try {
    return await buildAndReport(args, io, loaded.builder, {
      ...(loaded.stages ? { stages: loaded.stages } : {}),
      ...(platforms ? { platforms, ...(df ? { targetFor: df.imported.targetFor } : {}) } : {}),
      context: df?.context ?? one(args, '--context') ?? '.',
      ...(df?.imported.dockerignore !== undefined ? { dockerignore: df.imported.dockerignore } : {}),
      output, secrets, platform, network, allow, ssh, progress, signal, supply,
    })
  } finally {
    await df?.cleanup()
  }
}

interface BuildRun {
  readonly context: string
  readonly dockerignore?: string
  readonly output: OutputSpec | undefined
  readonly secrets: Record<string, SecretSource>
  readonly platform: string | undefined
  readonly platforms?: readonly string[]
  readonly targetFor?: BuildOptions['targetFor']
  readonly network: string | undefined
  readonly allow: readonly string[]
  readonly ssh: Record<string, string>
  readonly progress: string
  readonly stages?: Readonly<Record<string, ImageBuilder>>
  readonly signal: AbortSignal | undefined
  readonly supply: Pick<BuildOptions, 'attest' | 'reproducible'>
}

/** `--budget size=120MB,wasted=5MB,layers=30` as the `budget` option (sizes in docker's units). */
export function budgetFlag(args: ParsedArgs): { budget?: Budget } {
  const text = one(args, '--budget')
  if (text === undefined) return {}
  const budget: { size?: number; wasted?: number; layers?: number } = {}
  for (const [k, v] of parseCsvPairs(text, '--budget')) {
    if (k === 'size' || k === 'wasted') {
      const n = parseBytes(v)
      if (n === undefined) throw new UsageError(`--budget ${k}=${v}: not a size (120MB, 5MiB, 1000)`)
      budget[k] = n
    } else if (k === 'layers') {
      if (!/^\d{1,6}$/.test(v)) throw new UsageError(`--budget layers=${v}: not a count`)
      budget.layers = Number(v)
    } else throw new UsageError(`--budget takes size, wasted and layers, not ${k}`)
  }
  return { budget }
}

async function buildAndReport(args: ParsedArgs, io: Io, builder: ImageBuilder, run: BuildRun): Promise<number> {
  const { output, secrets, platform, network, progress, signal } = run
  const renderer = progressRenderer(progressMode(progress, io.isTTY === true), io)
  let result: BuildResult | undefined
  try {
    result = await builder.build({
    context: run.context,
    ...(run.dockerignore !== undefined ? { dockerignore: run.dockerignore } : {}),
    tags: many(args, '--tag'),
    output,
    noCache: args.flags.has('--no-cache'),
    ...(many(args, '--no-cache-filter').length > 0 ? { noCacheFilter: many(args, '--no-cache-filter').flatMap((f) => f.split(',')) } : {}),
    ...(run.stages ? { stages: run.stages } : {}),
    pull: args.flags.has('--pull'),
    buildArgs: buildArgs(args),
    secrets,
    ...(run.platforms ? { platforms: run.platforms, ...(run.targetFor ? { targetFor: run.targetFor } : {}) } : { platform }),
    network: (network ?? 'default') as 'default' | 'none' | 'host',
    ...(one(args, '--engine') !== undefined ? { engine: parseEngine(one(args, '--engine')!) } : {}),
    allow: run.allow as ('network.host' | 'security.insecure')[],
    ssh: run.ssh,
    cacheDir: one(args, '--cache-dir'),
    runtime: one(args, '--runtime'),
    registry: registryFlags(args),
    ...buildxOptions(args),
    ...run.supply,
    ...budgetFlag(args),
    signal,
    onProgress: renderer.onEvent,
  })
  } catch (e) {
    // Plain progress printed the failed step's output as it came: its tail is not repeated.
    throw renderer.showsOutput ? withoutOutputTail(e) : e
  } finally {
    renderer.finish(result, result?.output)
  }
  await writeIidFile(args, result)
  // Cache imports and exports never fail the build (see README): what went wrong is said here.
  for (const w of result.cache?.warnings ?? []) io.err(`warning: ${w}\n`)
  const metadataFile = one(args, '--metadata-file')
  if (metadataFile !== undefined) await writeMetadataFile(metadataFile, result, many(args, '--tag'))
  if (progress !== 'quiet' && progress !== 'rawjson') {
    if (output?.type === 'oci') {
      io.err(`load it with:  podman load -i ${output.dest}  |  docker load -i ${output.dest}  |  ctr images import ${output.dest}\n`)
    } else if (output?.type === 'registry' && result.pushed) {
      const p = result.pushed
      io.err(`pushed ${p.tags.join(', ')}: ${p.blobs} blobs uploaded (${formatSize(p.bytes)}), ${p.mounted} mounted, ${p.skipped} already there\n`)
    } else if (output?.type === 'docker') {
      io.err(`loaded into ${output.host ?? 'the Docker engine'}${result.ref ? ` as ${result.ref}` : ''}\n`)
    } else if (output && 'dest' in output) {
      // In a layout the tag is what index.json names the image by (org.opencontainers.image.ref.name).
      const tag = many(args, '--tag')[0]
      io.err(`inspect it with:  skopeo inspect oci:${output.dest}${tag ? `:${parseImageName(tag).tag}` : ''}\n`)
    }
  }
  io.out(`${result.digest}\n`)
  return 0
}
