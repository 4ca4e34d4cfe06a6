import { readFileSync } from 'node:fs'
import { isImagesmithError, ErrorCodes, ImagesmithError } from '../errors.js'
import { UsageError, parseArgs, type ParsedArgs } from './args.js'
import { buildCommand } from './build.js'
import { BAKE_HELP, bakeCommand } from './bake.js'
import { graphCommand } from './graph.js'
import { inspectCommand } from './inspect.js'
import type { Io } from './io.js'
import { LOGIN_HELP, loginCommand, logoutCommand } from './login.js'
import { DOCKERFILE_HELP, dockerfileCommand } from './dockerfile.js'
import { CONVERT_HELP, convertCommand } from './convert.js'
import { PULL_HELP, pullCommand } from './pull.js'
import { IMAGES_HELP, imagesCommand, rmiCommand, saveCommand, tagCommand } from './images.js'
import { CACHE_HELP, cacheCommand } from './cache.js'
import { BINFMT_HELP, binfmtCommand } from './binfmt.js'
import { DIFF_HELP, diffCommand } from './diff.js'
import { REGISTRY_FLAGS_HELP } from './registry-flags.js'
import { closedPipeWriter } from './closed-pipe.js'
import { connectLocalDriver } from '../drivers/connect-local.js'
import { BUILDX_FLAGS_HELP } from './buildx-flags.js'
import { SUPPLY_FLAGS_HELP } from './supply-flags.js'

// The build command's flag list and -o parser, importable from the CLI entry as before the commands had files.
export { BUILD_FLAGS, parseOutput } from './build.js'

// Builders made here (a Dockerfile's) build through the local pipeline, as the package entry's do.
connectLocalDriver()

const HELP = `imagesmith: build OCI images from TypeScript

Usage:
  imagesmith build -f Dockerfile|- [CONTEXT_DIR | CONTEXT.tar[.gz] | -]   (or: imagesmith build CONTEXT, with CONTEXT/Dockerfile)
                   same flags as below; --target names a stage; <Dockerfile>.dockerignore beside it wins over .dockerignore
  imagesmith build <build.ts> [--context DIR] [-t TAG]... [-o type=oci,dest=PATH | type=oci-layout,dest=DIR | type=docker[,host=H] | type=registry]
                   [--load | --push]
                   [--target NAME] [--no-cache] [--no-cache-filter STAGE]... [--progress auto|plain|tty|rawjson|quiet]
                   [--metadata-file PATH] [--build-arg K=V]... [--budget size=120MB,wasted=5MB,layers=30]
                   [--secret id=ID,src=PATH | id=ID,env=VAR]... [--ssh default|ID=SOCKET]... [--platform os/arch]
                   [--network default|none|host] [--allow network.host|security.insecure]...
                   [--cache-dir DIR] [--runtime crun|runc|PATH] [--registry-mirror R=HOST]... [--insecure-registry HOST]...
                   [--engine docker[,host=unix:///S|tcp://H:P|ssh://U@H][,cache-from=REF]]  (build on that Docker Engine or Podman service)
${BAKE_HELP}
  imagesmith graph <build.ts> | -f Dockerfile|- [CONTEXT] [--target NAME] [--format mermaid|dot] [--build-arg K=V]... [--platform os/arch]
  imagesmith inspect <archive.tar | layout-dir | local image name | host/repo:tag> [--json | --format json] [--cache-dir DIR]
                   [--layers]: per layer its step, size, added/changed/removed paths, largest paths; bytes later layers
                   hide; dive's efficiency. [--ci [--ci-config FILE]]: check .dive-ci's rules, exit 1 if one fails
  imagesmith inspect <archive.tar | layout-dir | local image name | registry ref> --attestations [--format json|text]
${DIFF_HELP}
${DOCKERFILE_HELP}
${CONVERT_HELP}
${LOGIN_HELP}
${PULL_HELP}
${IMAGES_HELP}
${CACHE_HELP}
${BINFMT_HELP}

Progress (stderr): tty redraws a live view (steps, elapsed, cached marks, a RUN's last lines); plain prints one
line per event, with the reason each rebuilt step missed the cache; auto is tty on a terminal, plain otherwise
(and with CI set); rawjson prints one JSON event per line (RUN output base64); quiet prints only errors.
--metadata-file writes buildx's keys (containerimage.digest, image.name, containerimage.config.digest) and
imagesmith.vertices (key, cached or built, ms, reason) as JSON. --no-cache-filter rebuilds only the named stages.
Outputs: type=registry (or --push) pushes to every -t tag's registry (upload=auto|monolithic|chunked,
chunk-size=BYTES); credentials come from config.json as docker login stores them.
type=docker (or --load) streams the image into a Docker or Podman engine API with its tags:
host=unix:///path or tcp://host:port, default $DOCKER_HOST, else unix:///var/run/docker.sock.
type=oci, type=oci-layout and type=registry take compression=zstd[,compression-level=0-22][,force-compression=true]:
tar+zstd layers (OCI media types; podman, containerd >= 1.5, Docker >= 23), the base image's layers kept as they are
unless force-compression=true; type=docker refuses zstd. gzip is the default.
--budget size=BYTES,wasted=BYTES,layers=N fails the build (BUDGET_EXCEEDED, no output) over any of them.
${REGISTRY_FLAGS_HELP}
${BUILDX_FLAGS_HELP}
${SUPPLY_FLAGS_HELP}
Network: default gives each RUN a private network (slirp4netns; the host's loopback unreachable); none gives RUN only loopback.
Entitlements (as BuildKit's --allow): --network host and RUN --network=host need --allow network.host;
RUN --security=insecure (all capabilities) needs --allow security.insecure.
SSH: --ssh default forwards $SSH_AUTH_SOCK, --ssh ID=SOCKET a given agent socket, to RUN --mount=type=ssh[,id=ID].

Exit codes: 0 ok, 1 build failed, 2 usage error. Errors print as "error [CODE]: message".
`

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
  build: buildCommand, bake: bakeCommand, graph: graphCommand, inspect: inspectCommand, login: loginCommand, logout: logoutCommand, dockerfile: dockerfileCommand, convert: convertCommand, pull: pullCommand,
  images: imagesCommand, tag: tagCommand, rmi: rmiCommand, save: saveCommand, cache: cacheCommand, binfmt: binfmtCommand, diff: diffCommand,
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
