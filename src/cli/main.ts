import { existsSync, readFileSync } from 'node:fs'
import { isImagesmithError, ErrorCodes, ImagesmithError } from '../errors.js'
import { toDot, toMermaid } from '../graph/render.js'
import { stageNamesOf } from '../graph/stage-labels.js'
import { inspectImages, type InspectedImage } from '../sources/inspect.js'
import { findLocalImage, storedImage } from '../sources/local-names.js'
import { Store } from '../store/store.js'
import type { Digest } from '../oci/media-types.js'
import { parseImageName } from '../reference/reference.js'
import { parsePlatform } from '../pipeline/resolve-options.js'
import { connectLocalDriver } from '../pipeline/local-driver.js'
import { lowerTriggers } from '../pipeline/onbuild.js'
import type { OutputSpec } from '../pipeline/options.js'
import type { SecretSource } from '../solver/types.js'
import { UsageError, assertKnownFlags, many, one, parseArgs, parseCsvPairs, type ParsedArgs } from './args.js'
import { loadBuildScript } from './load-script.js'
import { isDockerfileBuild, loadDockerfileBuild } from './build-dockerfile.js'
import { defaultCacheDir } from '../pipeline/resolve-options.js'
import type { ImageBuilder } from '../builder/image-builder.js'
import { LOGIN_HELP, loginCommand, logoutCommand } from './login.js'
import { DOCKERFILE_HELP, dockerfileCommand } from './dockerfile.js'
import { CONVERT_HELP, convertCommand } from './convert.js'
import { PULL_HELP, pullCommand } from './pull.js'
import { PROGRESS_MODES, progressMode, progressRenderer, withoutOutputTail } from './progress.js'
import { writeMetadataFile } from './metadata.js'
import type { BuildResult } from '../pipeline/options.js'
import { IMAGES_HELP, imagesCommand, rmiCommand, saveCommand, tagCommand } from './images.js'
import { CACHE_HELP, cacheCommand } from './cache.js'
import { REGISTRY_FLAGS, REGISTRY_FLAGS_HELP, registryFlags } from './registry-flags.js'
import { closedPipeWriter } from './closed-pipe.js'
import { BUILDX_FLAGS, BUILDX_FLAGS_HELP, buildxOptions, writeIidFile } from './buildx-flags.js'

// Builders made here (a Dockerfile's) build through the local pipeline, as the package entry's do.
connectLocalDriver()

const HELP = `imagesmith: build OCI images from TypeScript

Usage:
  imagesmith build -f Dockerfile|- [CONTEXT_DIR | CONTEXT.tar[.gz] | -]   (or: imagesmith build CONTEXT, with CONTEXT/Dockerfile)
                   same flags as below; --target names a stage; <Dockerfile>.dockerignore beside it wins over .dockerignore
  imagesmith build <build.ts> [--context DIR] [-t TAG]... [-o type=oci,dest=PATH | type=oci-layout,dest=DIR | type=docker[,host=H] | type=registry]
                   [--load | --push]
                   [--target NAME] [--no-cache] [--no-cache-filter STAGE]... [--progress auto|plain|tty|rawjson|quiet]
                   [--metadata-file PATH] [--build-arg K=V]...
                   [--secret id=ID,src=PATH | id=ID,env=VAR]... [--ssh default|ID=SOCKET]... [--platform os/arch]
                   [--network default|none|host] [--allow network.host|security.insecure]...
                   [--cache-dir DIR] [--runtime crun|runc|PATH] [--registry-mirror R=HOST]... [--insecure-registry HOST]...
  imagesmith graph <build.ts> | -f Dockerfile|- [CONTEXT] [--target NAME] [--format mermaid|dot] [--build-arg K=V]... [--platform os/arch]
  imagesmith inspect <archive.tar | layout-dir | local image name> [--json] [--cache-dir DIR]
${DOCKERFILE_HELP}
${CONVERT_HELP}
${LOGIN_HELP}
${PULL_HELP}
${IMAGES_HELP}
${CACHE_HELP}

Progress (stderr): tty redraws a live view (steps, elapsed, cached marks, a RUN's last lines); plain prints one
line per event, with the reason each rebuilt step missed the cache; auto is tty on a terminal, plain otherwise
(and with CI set); rawjson prints one JSON event per line (RUN output base64); quiet prints only errors.
--metadata-file writes buildx's keys (containerimage.digest, image.name, containerimage.config.digest) and
imagesmith.vertices (key, cached or built, ms, reason) as JSON. --no-cache-filter rebuilds only the named stages.
Outputs: type=registry (or --push) pushes to every -t tag's registry (upload=auto|monolithic|chunked,
chunk-size=BYTES); credentials come from config.json as docker login stores them.
type=docker (or --load) streams the image into a Docker or Podman engine API with its tags:
host=unix:///path or tcp://host:port, default $DOCKER_HOST, else unix:///var/run/docker.sock.
${REGISTRY_FLAGS_HELP}
${BUILDX_FLAGS_HELP}
Network: default gives each RUN a private network (slirp4netns; the host's loopback unreachable); none gives RUN only loopback.
Entitlements (as BuildKit's --allow): --network host and RUN --network=host need --allow network.host;
RUN --security=insecure (all capabilities) needs --allow security.insecure.
SSH: --ssh default forwards $SSH_AUTH_SOCK, --ssh ID=SOCKET a given agent socket, to RUN --mount=type=ssh[,id=ID].

Exit codes: 0 ok, 1 build failed, 2 usage error. Errors print as "error [CODE]: message".
`

interface Io {
  out: (s: string) => void
  err: (s: string) => void
  /** stderr is a terminal (and not CI): `--progress auto` draws the live view. */
  isTTY?: boolean
}

export async function main(argv: readonly string[], io: Io, signal?: AbortSignal): Promise<number> {
  let args: ParsedArgs
  try {
    args = parseArgs(argv)
    if (args.flags.has('--version')) {
      io.out(`${version()}\n`)
      return 0
    }
    if (!args.command || args.flags.has('--help') || args.command === 'help') {
      io.out(HELP)
      return args.command || args.flags.has('--help') ? 0 : 2
    }
    const command = Object.hasOwn(COMMANDS, args.command) ? COMMANDS[args.command] : undefined
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(args.command)}`)
    return await command(args, io, signal)
  } catch (e) {
    if (e instanceof UsageError) {
      // One line, as docker does: the whole help after it would scroll the error away.
      io.err(`error: ${e.message}\nSee '${helpCommand(argv)}'.\n`)
      return 2
    }
    const err = isImagesmithError(e) ? e : internal(e)
    // A step imported from a Dockerfile: its file and line first, as a parse error gives them.
    const { dockerfile, line } = err.details
    const at = typeof dockerfile === 'string' && typeof line === 'number' && !err.message.startsWith(`${dockerfile}:`) ? `${dockerfile}:${line}: ` : ''
    io.err(`error [${err.code}]: ${at}${err.message}\n`)
    const step = err.details.step
    if (typeof step === 'string' && !err.message.includes(step)) io.err(`  in step: ${step}\n`)
    // INTERNAL is a bug: its stack is what a report needs.
    if (err.code === ErrorCodes.INTERNAL) io.err(`${(err.cause as Error)?.stack ?? err.stack ?? ''}\n`)
    // Flag values are checked before the build starts (UsageError); a wrong --target is one too.
    return err.code === ErrorCodes.TARGET_NOT_FOUND ? 2 : 1
  }
}

type Command = (args: ParsedArgs, io: Io, signal: AbortSignal | undefined) => Promise<number>

const COMMANDS: Readonly<Record<string, Command>> = {
  build, graph, inspect, login: loginCommand, logout: logoutCommand, dockerfile: dockerfileCommand, convert: convertCommand, pull: pullCommand,
  images: imagesCommand, tag: tagCommand, rmi: rmiCommand, save: saveCommand, cache: cacheCommand,
}

/** `imagesmith build --help` after a usage error of `build`; the plain `imagesmith --help` when no known command was given. */
function helpCommand(argv: readonly string[]): string {
  let command: string | undefined
  try {
    command = parseArgs(argv).command
  } catch {
    // The arguments did not parse (a flag without its value): the first word is the command, if any.
    command = argv.find((a) => !a.startsWith('-'))
  }
  return command !== undefined && Object.hasOwn(COMMANDS, command) ? `imagesmith ${command} --help` : 'imagesmith --help'
}

/** The CLI's own gateway: nothing leaves it untyped. */
function internal(e: unknown): ImagesmithError {
  return new ImagesmithError(ErrorCodes.INTERNAL, `internal error: ${(e as Error)?.message ?? String(e)}`, {}, { cause: e })
}

/** src/cli/main.ts and dist/cli.js sit at different depths: look upwards for our package.json. */
function version(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string }
      if (pkg.name === 'imagesmith') return pkg.version
    } catch {
      /* try the next */
    }
  }
  return 'unknown'
}

function script(args: ParsedArgs): string {
  const path = args.positionals[0]
  if (!path) throw new UsageError(`${args.command} needs a build script path`)
  if (args.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[1])}`)
  return path
}

function buildArgs(args: ParsedArgs): Record<string, string> {
  const out: Record<string, string> = {}
  for (const kv of many(args, '--build-arg')) {
    const eq = kv.indexOf('=')
    if (eq === 0) throw new UsageError(`invalid --build-arg ${JSON.stringify(kv)}`)
    // `--build-arg NAME` takes the value from the environment, as docker does.
    if (eq < 0) {
      const v = process.env[kv]
      if (v !== undefined) out[kv] = v
    } else out[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  return out
}

export function parseOutput(text: string): OutputSpec {
  const kv = parseCsvPairs(text, '--output')
  const type = kv.get('type')
  const dest = kv.get('dest')
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
    return { type: 'registry', ...(upload ? { upload } : {}), ...(chunkSize ? { chunkSize } : {}) }
  }
  if (!dest) throw new UsageError(`--output ${text}: dest=PATH is required`)
  if (type === 'oci') return kv.get('tar') === 'false' ? { type: 'oci-layout', dest } : { type: 'oci', dest }
  if (type === 'oci-layout') return { type: 'oci-layout', dest }
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

/** Every flag `imagesmith build` takes (the README's synopsis lists each one). */
export const BUILD_FLAGS: readonly string[] = Object.freeze(['--context', '--file', '--tag', '--output', '--load', '--push', '--target', '--no-cache', '--no-cache-filter', '--metadata-file', '--progress', '--build-arg', '--secret', '--ssh', '--allow', '--platform', '--network', '--cache-dir', '--runtime', '--quiet', '--pull', ...REGISTRY_FLAGS, ...BUILDX_FLAGS])

async function build(args: ParsedArgs, io: Io, signal?: AbortSignal): Promise<number> {
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
  const output = outputFlags(args)
  const secrets = Object.fromEntries(many(args, '--secret').map(parseSecret))
  for (const t of many(args, '--tag')) flagCheck(() => parseImageName(t), '--tag')
  const platform = one(args, '--platform')
  if (platform !== undefined) flagCheck(() => parsePlatform(platform), '--platform')
  const df = dockerfile
    ? await loadDockerfileBuild(args, { buildArgs: buildArgs(args), ...(platform !== undefined ? { platform } : {}), cacheDir: one(args, '--cache-dir') ?? defaultCacheDir(), stdin: process.stdin })
    : undefined
  const loaded = df ? { builder: df.imported.target, stages: df.imported.stages } : await loadBuildScript(path, one(args, '--target'), { cacheDir: one(args, '--cache-dir') ?? defaultCacheDir(), buildArgs: buildArgs(args) })
  try {
    return await buildAndReport(args, io, loaded.builder, {
      ...(loaded.stages ? { stages: loaded.stages } : {}),
      context: df?.context ?? one(args, '--context') ?? '.',
      ...(df?.imported.dockerignore !== undefined ? { dockerignore: df.imported.dockerignore } : {}),
      output, secrets, platform, network, allow, ssh, progress, signal,
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
  readonly network: string | undefined
  readonly allow: readonly string[]
  readonly ssh: Record<string, string>
  readonly progress: string
  readonly stages?: Readonly<Record<string, ImageBuilder>>
  readonly signal: AbortSignal | undefined
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
    platform,
    network: (network ?? 'default') as 'default' | 'none' | 'host',
    allow: run.allow as ('network.host' | 'security.insecure')[],
    ssh: run.ssh,
    cacheDir: one(args, '--cache-dir'),
    runtime: one(args, '--runtime'),
    registry: registryFlags(args),
    ...buildxOptions(args),
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

function flagCheck(fn: () => unknown, flag: string): void {
  try {
    fn()
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`)
  }
}

/** The graph of a build script, or of a Dockerfile taken as `build` takes it (`-f`, a context, `--platform`). */
async function graph(args: ParsedArgs, io: Io): Promise<number> {
  assertKnownFlags(args, ['--target', '--format', '--build-arg', '--file', '--context', '--platform', '--cache-dir'])
  const format = one(args, '--format') ?? 'mermaid'
  if (format !== 'mermaid' && format !== 'dot') throw new UsageError('--format must be mermaid or dot')
  const platform = one(args, '--platform')
  if (platform !== undefined) flagCheck(() => parsePlatform(platform), '--platform')
  const cacheDir = one(args, '--cache-dir') ?? defaultCacheDir()
  const df = isDockerfileBuild(args)
    ? await loadDockerfileBuild(args, { buildArgs: buildArgs(args), ...(platform !== undefined ? { platform } : {}), cacheDir, stdin: process.stdin })
    : undefined
  try {
    if (!df && platform !== undefined) throw new UsageError('--platform applies to a Dockerfile; a build script chooses its own')
    const { builder, stages } = df ? { builder: df.imported.target, stages: df.imported.stages } : await loadBuildScript(script(args), one(args, '--target'), { cacheDir, buildArgs: buildArgs(args) })
    // Named stages label the steps and the stages they copy from, as a build's progress does.
    const g = builder.graph({ buildArgs: buildArgs(args), lowerTriggers, ...(stages ? { stageNames: stageNamesOf(stages) } : {}) })
    io.out(format === 'dot' ? toDot(g) : toMermaid(g))
    return 0
  } finally {
    await df?.cleanup()
  }
}

async function inspect(args: ParsedArgs, io: Io): Promise<number> {
  assertKnownFlags(args, ['--json', '--cache-dir'])
  const path = args.positionals[0]
  if (!path || args.positionals.length > 1) throw new UsageError('inspect needs one archive or layout path, or a local image name')
  const images = existsSync(path) ? await inspectImages(path) : [await inspectLocal(path, one(args, '--cache-dir') ?? defaultCacheDir())]
  if (args.flags.has('--json')) {
    io.out(`${JSON.stringify(images, null, 2)}\n`)
    return 0
  }
  for (const img of images) {
    const c = img.config
    io.out(`Name:         ${img.name ?? '(none)'}\n`)
    io.out(`Digest:       ${img.manifestDigest}\n`)
    io.out(`Config:       ${img.manifest.config.digest}\n`)
    io.out(`Platform:     ${c.os}/${c.architecture}${c.variant ? `/${c.variant}` : ''}\n`)
    io.out(`Created:      ${c.created ?? ''}\n`)
    const cc = c.config ?? {}
    if (cc.Entrypoint) io.out(`Entrypoint:   ${JSON.stringify(cc.Entrypoint)}\n`)
    if (cc.Cmd) io.out(`Cmd:          ${JSON.stringify(cc.Cmd)}\n`)
    if (cc.WorkingDir) io.out(`WorkingDir:   ${cc.WorkingDir}\n`)
    if (cc.User) io.out(`User:         ${cc.User}\n`)
    for (const e of cc.Env ?? []) io.out(`Env:          ${e}\n`)
    if (cc.ExposedPorts) io.out(`ExposedPorts: ${Object.keys(cc.ExposedPorts).join(' ')}\n`)
    if (cc.Volumes) io.out(`Volumes:      ${Object.keys(cc.Volumes).join(' ')}\n`)
    for (const [k, v] of Object.entries(cc.Labels ?? {})) io.out(`Label:        ${k}=${v}\n`)
    io.out(`Layers:\n`)
    for (const [i, l] of img.manifest.layers.entries()) io.out(`  ${l.digest}  ${formatSize(l.size).padStart(9)}  ${c.rootfs.diff_ids[i] ?? ''}\n`)
    io.out(`History:\n`)
    for (const h of c.history ?? []) io.out(`  ${h.empty_layer ? '      ' : 'layer '} ${h.created_by ?? ''}\n`)
    io.out('\n')
  }
  return 0
}

/** A local image by name or digest prefix (`imagesmith images`), as `docker inspect NAME` takes it. */
async function inspectLocal(text: string, cacheDir: string): Promise<InspectedImage> {
  const store = new Store(cacheDir)
  await store.init()
  const record = await findLocalImage(store, text)
  if (!record) {
    throw new ImagesmithError(ErrorCodes.IMAGE_NOT_FOUND, `no archive or layout at ${text}, and no local image ${text} (see imagesmith images)`, { reference: text, path: text })
  }
  const image = await storedImage(store, record.digest as Digest, text)
  return { name: `${record.repository}:${record.tag}`, manifestDigest: image.manifestDigest, manifest: image.manifest, config: image.config }
}

function formatSize(n: number): string {
  if (n < 1024) return `${n}B`
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)}kB`
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)}MB`
  return `${(n / (1 << 30)).toFixed(2)}GB`
}

function isMain(): boolean {
  const entry = process.argv[1]
  if (!entry) return false
  return /(?:^|[\\/])(?:cli|main)\.(?:[cm]?js|ts)$/.test(entry) || /imagesmith(?:\.js)?$/.test(entry)
}

if (isMain()) {
  const controller = new AbortController()
  const out = closedPipeWriter(process.stdout)
  const err = closedPipeWriter(process.stderr)
  let interrupted = false
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(130)
    interrupted = true
    err(`\n${sig}: cancelling the build...\n`)
    controller.abort(new Error(sig))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const isTTY = process.stderr.isTTY === true && !process.env.CI
  main(process.argv.slice(2), { out, err, isTTY }, controller.signal).then(
    (code) => {
      process.exitCode = interrupted && code !== 0 ? 130 : code
    },
  )
}
