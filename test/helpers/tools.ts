/**
 * Thin wrappers around the real tools integration tests check outputs with:
 * skopeo, oci-image-tool, podman, dockerd/docker/ctr and docker-registry.
 * No mocks: every helper runs the Debian-packaged binary (the Debian packages scripts/provision.sh installs).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync, openSync, closeSync, readFileSync, readdirSync, statSync, statfsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { BASE_TAG, onProcessExit, removeTree, removeTreeSync, shortTmpDir, tmpDir } from './testbed.js'

// ---------------------------------------------------------------------------
// Running tools

export interface ToolResult {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
}

export interface RunToolOptions {
  /** Kill the tool (SIGKILL) after this long. @default 120_000 */
  readonly timeoutMs?: number
  /** Return non-zero exits instead of throwing. @default false */
  readonly allowFailure?: boolean
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** Written to the tool's stdin. */
  readonly input?: string | Buffer
}

/** A tool exited non-zero, was killed, or could not start. Carries the full stderr. */
export class ToolError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stdout: string,
    readonly stderr: string,
    why: string,
  ) {
    const tail = stdout.length > 4000 ? `…${stdout.slice(-4000)}` : stdout
    super(`${argv.join(' ')}: ${why}\n--- stderr ---\n${stderr}\n--- stdout (tail) ---\n${tail}`)
    this.name = 'ToolError'
  }
}

/** Runs `cmd args` with execFile; throws {@link ToolError} on failure unless `allowFailure`. */
export function runTool(cmd: string, args: readonly string[], opts: RunToolOptions = {}): Promise<ToolResult> {
  const timeout = opts.timeoutMs ?? 120_000
  const argv = [cmd, ...args]
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout, killSignal: 'SIGKILL', maxBuffer: 512 * 1024 * 1024, env: opts.env ?? process.env, cwd: opts.cwd, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err === null) return resolve({ stdout, stderr, exitCode: 0 })
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string | null }
        if (typeof e.code === 'number' && opts.allowFailure === true) {
          return resolve({ stdout, stderr, exitCode: e.code })
        }
        const why =
          e.killed === true || e.signal != null
            ? `killed (${e.signal ?? 'SIGKILL'}) after ${timeout} ms timeout or signal`
            : typeof e.code === 'number'
              ? `exit code ${e.code}`
              : `failed to start: ${e.message}`
        reject(new ToolError(argv, typeof e.code === 'number' ? e.code : null, e.signal ?? null, stdout, stderr, why))
      },
    )
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

// ---------------------------------------------------------------------------
// Availability and suite gating

const EXTRA_BIN_DIRS = ['/usr/sbin', '/sbin', '/usr/local/sbin']

/** Absolute path of a tool found on PATH (plus the sbin dirs), or undefined. */
export function toolPath(name: string): string | undefined {
  const candidates = name.startsWith('/')
    ? [name]
    : [...(process.env['PATH'] ?? '').split(':').filter(Boolean), ...EXTRA_BIN_DIRS].map((d) => join(d, name))
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK)
      if (statSync(p).isFile()) return p
    } catch {
      // not here
    }
  }
  return undefined
}

/** True when `name` (a command name or absolute path) is an executable file. */
export function toolAvailable(name: string): boolean {
  return toolPath(name) !== undefined
}

/** Running as root on Debian: the machines where the test bed must be complete. */
export function isRootOnDebian(): boolean {
  if (process.getuid?.() !== 0) return false
  try {
    const osr = readFileSync('/etc/os-release', 'utf8')
    return /^ID=("?)debian\1$/m.test(osr) || /^ID_LIKE=.*\bdebian\b/m.test(osr)
  } catch {
    return false
  }
}

export interface ToolRequirement {
  /** Pass to `describe.skipIf(...)`. */
  readonly skip: boolean
  /** Why the suite skips ('' when it runs). */
  readonly reason: string
}

/**
 * Gate a suite on real tools: `const bed = requireTools(['podman']); describe.skipIf(bed.skip)(...)`.
 * As root on Debian a missing tool is an error (provision.sh installs them all), so this throws
 * and the test file fails. Elsewhere the suite skips, with a loud message on stderr.
 * `needsRoot` (default true): the tools are used in ways that need root (daemons, runc, mounts).
 */
export function requireTools(names: readonly string[], opts: { needsRoot?: boolean } = {}): ToolRequirement {
  const missing = names.filter((n) => !toolAvailable(n))
  if (isRootOnDebian()) {
    if (missing.length > 0) {
      throw new Error(
        `testbed: missing tools as root on Debian: ${missing.join(', ')}. ` +
          'scripts/provision.sh should have installed them: run `bash scripts/provision.sh` and read its output.',
      )
    }
    return { skip: false, reason: '' }
  }
  const notRoot = (opts.needsRoot ?? true) && process.getuid?.() !== 0
  if (missing.length === 0 && !notRoot) return { skip: false, reason: '' }
  const parts = [
    ...(missing.length > 0 ? [`missing tools: ${missing.join(', ')}`] : []),
    ...(notRoot ? ['not running as root'] : []),
  ]
  const reason = `${parts.join('; ')} (not root on Debian, so skipping; run scripts/provision.sh as root on Debian 12 for the full bed)`
  process.stderr.write(`\n*** SKIPPING integration suite: ${reason} ***\n\n`)
  return { skip: true, reason }
}

// ---------------------------------------------------------------------------
// skopeo

function skopeoRef(target: string, tag: string): string {
  if (/^[a-z-]+:/.test(target) && !existsSync(target)) return target // already transport:ref
  return statSync(target).isDirectory() ? `oci:${target}:${tag}` : `oci-archive:${target}`
}

function skopeoArgs(target: string, tag: string): string[] {
  const ref = skopeoRef(target, tag)
  return ref.startsWith('docker://') ? ['--tls-verify=false', ref] : [ref]
}

/**
 * `skopeo inspect` of an OCI archive (file), an OCI layout (dir, with `tag`), or any
 * `transport:ref` (docker:// refs get --tls-verify=false). Returns the parsed JSON.
 */
export async function skopeoInspect(target: string, tag = BASE_TAG): Promise<SkopeoInspect> {
  const r = await runTool('skopeo', ['inspect', ...skopeoArgs(target, tag)])
  return JSON.parse(r.stdout) as SkopeoInspect
}

/** `skopeo inspect --config`: the image config JSON. */
export async function skopeoInspectConfig(target: string, tag = BASE_TAG): Promise<Record<string, unknown>> {
  const r = await runTool('skopeo', ['inspect', '--config', ...skopeoArgs(target, tag)])
  return JSON.parse(r.stdout) as Record<string, unknown>
}

/** `skopeo inspect --raw`: the manifest exactly as stored. */
export async function skopeoInspectRaw(target: string, tag = BASE_TAG): Promise<string> {
  return (await runTool('skopeo', ['inspect', '--raw', ...skopeoArgs(target, tag)])).stdout
}

export interface SkopeoInspect {
  readonly Digest: string
  readonly RepoTags: readonly string[] | null
  readonly Created?: string
  readonly Architecture: string
  readonly Os: string
  readonly Layers: readonly string[]
  readonly Env: readonly string[] | null
  readonly Labels: Record<string, string> | null
  readonly [key: string]: unknown
}

// ---------------------------------------------------------------------------
// oci-image-tool

/**
 * `oci-image-tool validate --type image --ref name=REF` on an OCI layout dir or an OCI archive.
 * `refName` is the `org.opencontainers.image.ref.name` annotation as written in index.json
 * (the tag alone, e.g. `latest`). oci-image-tool 1.0.0-rc1 (Debian's) fails on every tar with
 * `find failed: unable to walk: end of walk`, so a tar is unpacked to a temp dir and the dir validated.
 */
export async function ociImageToolValidate(pathOrTar: string, refName = BASE_TAG): Promise<ToolResult> {
  if (statSync(pathOrTar).isDirectory()) {
    return runTool('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${refName}`, pathOrTar])
  }
  const dir = await tmpDir('ism-oit-')
  try {
    await runTool('tar', ['-xf', pathOrTar, '-C', dir])
    return await runTool('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${refName}`, dir])
  } finally {
    await removeTree(dir)
  }
}

// ---------------------------------------------------------------------------
// Processes tied to a private temp dir

/** PIDs whose command line mentions `dir` (daemons, shims and conmons started on our private paths). */
function pidsReferencing(dir: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry))
    } catch {
      // exited meanwhile
    }
  }
  return pids
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function hardCleanupSync(dir: string): void {
  killAll(pidsReferencing(dir))
  removeTreeSync(dir)
}

// ---------------------------------------------------------------------------
// podman

export interface PodmanRunOptions {
  /** Command (replaces the image's Cmd). */
  readonly args?: readonly string[]
  readonly user?: string
  /** `--entrypoint`; an array is passed as JSON, '' clears it. */
  readonly entrypoint?: string | readonly string[]
  readonly env?: Readonly<Record<string, string>>
  readonly workdir?: string
  readonly allowFailure?: boolean
  readonly timeoutMs?: number
  /** `--arch`: run an image of another architecture (through the host's binfmt_misc emulator). */
  readonly arch?: string
}

export interface LoadedImage {
  /** Names podman reported (`Loaded image: …`), e.g. `localhost/latest:latest`. */
  readonly names: readonly string[]
  /** Full image id (config digest hex). */
  readonly id: string
}

/** A podman with a private store (root, runroot, tmpdir) in a temp dir. */
export interface PodmanStore {
  readonly dir: string
  readonly storageDriver: string
  /** Runs `podman <global store flags> ...args`. */
  podman(args: readonly string[], opts?: RunToolOptions): Promise<ToolResult>
  load(archive: string): Promise<LoadedImage>
  run(image: string, opts?: PodmanRunOptions): Promise<ToolResult>
  history(image: string): Promise<PodmanHistoryEntry[]>
  inspect(image: string): Promise<Record<string, unknown>>
  cleanup(): Promise<void>
}

export interface PodmanHistoryEntry {
  readonly id: string
  readonly created: string
  readonly CreatedBy: string
  readonly size: number
  readonly comment?: string
  readonly [key: string]: unknown
}

const OVERLAYFS_MAGIC = 0x794c7630

/** New podman store. overlay unless the temp dir itself sits on overlayfs (then vfs). */
export async function createPodmanStore(): Promise<PodmanStore> {
  const dir = await shortTmpDir('ism-p-')
  const storageDriver = statfsSync(dir).type === OVERLAYFS_MAGIC ? 'vfs' : 'overlay'
  const global = [
    '--root', join(dir, 'root'),
    '--runroot', join(dir, 'run'),
    '--tmpdir', join(dir, 'tmp'),
    '--storage-driver', storageDriver,
    '--runtime', 'runc',
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
  ]
  const env = { ...process.env, TMPDIR: dir }
  const dropExit = onProcessExit(() => hardCleanupSync(dir))
  const podman = (args: readonly string[], opts: RunToolOptions = {}): Promise<ToolResult> =>
    runTool('podman', [...global, ...args], { env, ...opts })

  const store: PodmanStore = {
    dir,
    storageDriver,
    podman,
    async load(archive) {
      const r = await podman(['load', '-i', archive])
      const names = [...`${r.stdout}\n${r.stderr}`.matchAll(/^Loaded image(?:\(s\))?: (.+)$/gm)]
        .flatMap((m) => (m[1] ?? '').split(','))
        .map((s) => s.trim())
        .filter(Boolean)
      const first = names[0]
      if (first === undefined) throw new Error(`podman load printed no image name:\n${r.stdout}\n${r.stderr}`)
      const id = (await podman(['image', 'inspect', '--format', '{{.Id}}', first])).stdout.trim()
      return { names, id }
    },
    run(image, opts = {}) {
      const args = ['run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024']
      if (opts.user !== undefined) args.push('--user', opts.user)
      if (opts.arch !== undefined) args.push('--arch', opts.arch)
      if (opts.workdir !== undefined) args.push('--workdir', opts.workdir)
      if (opts.entrypoint !== undefined) {
        args.push('--entrypoint', typeof opts.entrypoint === 'string' ? opts.entrypoint : JSON.stringify(opts.entrypoint))
      }
      for (const [k, v] of Object.entries(opts.env ?? {})) args.push('--env', `${k}=${v}`)
      args.push(image, ...(opts.args ?? []))
      return podman(args, {
        ...(opts.allowFailure !== undefined ? { allowFailure: opts.allowFailure } : {}),
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      })
    },
    async history(image) {
      return JSON.parse((await podman(['history', '--no-trunc', '--format', 'json', image])).stdout) as PodmanHistoryEntry[]
    },
    async inspect(image) {
      const list = JSON.parse((await podman(['image', 'inspect', image])).stdout) as Record<string, unknown>[]
      const first = list[0]
      if (first === undefined) throw new Error(`podman image inspect ${image}: empty result`)
      return first
    },
    async cleanup() {
      await podman(['rm', '--all', '--force', '--time', '0'], { allowFailure: true, timeoutMs: 30_000 }).catch(() => undefined)
      killAll(pidsReferencing(dir))
      // A plain user's podman stores files of its subordinate ids, which only its namespace may remove.
      if (process.getuid?.() !== 0) await podman(['unshare', 'rm', '-rf', join(dir, 'root'), join(dir, 'run')], { allowFailure: true, timeoutMs: 60_000 }).catch(() => undefined)
      await removeTree(dir)
      dropExit()
    },
  }
  return store
}

let sharedPodman: Promise<PodmanStore> | undefined

/** The store shared by the podman* helpers in this test process (created on first use). */
export function podmanStore(): Promise<PodmanStore> {
  sharedPodman ??= createPodmanStore()
  return sharedPodman
}

/** Loads an archive into the shared store and runs it; stdout is the container's output. */
export async function podmanLoadAndRun(
  archive: string,
  opts: PodmanRunOptions = {},
): Promise<{ image: LoadedImage } & ToolResult> {
  const store = await podmanStore()
  const image = await store.load(archive)
  const r = await store.run(image.id, opts)
  return { image, ...r }
}

export async function podmanHistory(image: string): Promise<PodmanHistoryEntry[]> {
  return (await podmanStore()).history(image)
}

export async function podmanInspect(image: string): Promise<Record<string, unknown>> {
  return (await podmanStore()).inspect(image)
}

/** Removes the shared store (call in afterAll). */
export async function podmanCleanup(): Promise<void> {
  const s = sharedPodman
  sharedPodman = undefined
  if (s !== undefined) await (await s).cleanup()
}

// ---------------------------------------------------------------------------
// dockerd (20.10) + its containerd

/** The 20.10 client that matches Debian's dockerd (not /usr/local/bin/docker). */
export const DOCKER_CLIENT = '/usr/bin/docker'

export interface Dockerd {
  readonly dir: string
  /** Path of dockerd's API socket. */
  readonly socket: string
  /** containerd started by dockerd: `<exec-root>/containerd/containerd.sock`. */
  readonly containerdSocket: string
  docker(args: readonly string[], opts?: RunToolOptions): Promise<ToolResult>
  /** `ctr -a <containerdSocket> -n <namespace> ...args` (namespace defaults to `imagesmith-test`). */
  ctr(args: readonly string[], opts?: RunToolOptions & { namespace?: string }): Promise<ToolResult>
  /** dockerd's log so far. */
  log(): string
  stop(): Promise<void>
}

/**
 * Starts a private dockerd on short paths under /tmp (unix sockets are limited to 108 bytes),
 * without iptables or a bridge, runc as runtime, default ulimits within the host's hard limits.
 * Resolves when `docker version` answers. `stop()` always kills it, its containerd and shims,
 * unmounts and removes the dir.
 */
export async function startDockerd(opts: { readyTimeoutMs?: number; extraArgs?: readonly string[] } = {}): Promise<Dockerd> {
  const dir = await shortTmpDir('ism-d-')
  const socket = join(dir, 's')
  const execRoot = join(dir, 'e')
  const containerdSocket = join(execRoot, 'containerd', 'containerd.sock')
  if (Buffer.byteLength(containerdSocket) + 10 > 107) throw new Error(`socket path too long: ${containerdSocket}`)
  const logPath = join(dir, 'dockerd.log')
  const configFile = join(dir, 'daemon.json')
  await writeFile(configFile, '{}\n')
  const runc = toolPath('runc') ?? '/usr/sbin/runc'
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: join(dir, 'cfg') }
  delete env['DOCKER_HOST']
  delete env['DOCKER_CONTEXT']

  const logFd = openSync(logPath, 'a')
  let child: ChildProcess
  try {
    child = spawn(
      'dockerd',
      [
        '--config-file', configFile,
        '--data-root', join(dir, 'data'),
        '--exec-root', execRoot,
        '--pidfile', join(dir, 'pid'),
        '--host', `unix://${socket}`,
        '--iptables=false', '--ip6tables=false', '--bridge=none',
        '--default-ulimit', 'nofile=1024:1024', '--default-ulimit', 'nproc=1024:1024',
        '--add-runtime', `ism-runc=${runc}`, '--default-runtime=ism-runc',
        ...(opts.extraArgs ?? []),
      ],
      { stdio: ['ignore', logFd, logFd], env },
    )
  } finally {
    closeSync(logFd)
  }
  let exited: { code: number | null; signal: string | null } | undefined
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal }
      resolve()
    })
    child.once('error', (err) => {
      exited = { code: null, signal: String(err) }
      resolve()
    })
  })
  const dropExit = onProcessExit(() => hardCleanupSync(dir))
  const log = (): string => {
    try {
      return readFileSync(logPath, 'utf8')
    } catch {
      return ''
    }
  }
  const docker = (args: readonly string[], o: RunToolOptions = {}): Promise<ToolResult> =>
    runTool(DOCKER_CLIENT, ['-H', `unix://${socket}`, ...args], { env, ...o })
  const ctr = (args: readonly string[], o: RunToolOptions & { namespace?: string } = {}): Promise<ToolResult> => {
    const { namespace = 'imagesmith-test', ...rest } = o
    return runTool('ctr', ['-a', containerdSocket, '-n', namespace, ...args], rest)
  }

  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    if (exited === undefined) {
      child.kill('SIGTERM')
      await Promise.race([exitPromise, sleep(20_000)])
    }
    // containerd, shims and anything else still running on our paths
    killAll(exited === undefined && child.pid !== undefined ? [child.pid] : [])
    killAll(pidsReferencing(dir))
    await Promise.race([exitPromise, sleep(2_000)])
    await removeTree(dir)
    dropExit()
  }

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000)
  for (;;) {
    if (exited !== undefined) {
      const tail = log().slice(-6000)
      await stop()
      throw new Error(`dockerd exited during startup (${JSON.stringify(exited)}); log tail:\n${tail}`)
    }
    const r = await docker(['version', '--format', '{{.Server.Version}}'], { allowFailure: true, timeoutMs: 10_000 }).catch(
      () => undefined,
    )
    if (r !== undefined && r.exitCode === 0 && existsSync(containerdSocket)) break
    if (Date.now() > deadline) {
      const tail = log().slice(-6000)
      await stop()
      throw new Error(`dockerd not ready after ${opts.readyTimeoutMs ?? 60_000} ms; log tail:\n${tail}`)
    }
    await sleep(100)
  }
  return { dir, socket, containerdSocket, docker, ctr, log, stop }
}

// ---------------------------------------------------------------------------
// docker-registry (distribution 2.8)

export interface Registry {
  /** `127.0.0.1:PORT` */
  readonly host: string
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  readonly dir: string
  /** Set when started with basic auth. */
  readonly auth?: { readonly username: string; readonly password: string }
  stop(): Promise<void>
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** Starts docker-registry on a free loopback port with temp storage; optional htpasswd (bcrypt) basic auth. */
export async function startRegistry(
  opts: { auth?: { username: string; password: string }; readyTimeoutMs?: number } = {},
): Promise<Registry> {
  const dir = await tmpDir('ism-r-')
  const dropExit = onProcessExit(() => hardCleanupSync(dir))
  let authYaml = ''
  if (opts.auth !== undefined) {
    const line = (await runTool('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password])).stdout.trim()
    await writeFile(join(dir, 'htpasswd'), `${line}\n`)
    authYaml = `auth:\n  htpasswd:\n    realm: imagesmith-test\n    path: ${join(dir, 'htpasswd')}\n`
  }
  let lastError = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeLoopbackPort()
    const host = `127.0.0.1:${port}`
    const config = join(dir, 'config.yml')
    await writeFile(
      config,
      'version: 0.1\n' +
        'log:\n  level: warn\n  accesslog:\n    disabled: true\n' +
        `storage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\n` +
        `http:\n  addr: ${host}\n` +
        authYaml,
    )
    const logPath = join(dir, `registry-${attempt}.log`)
    const logFd = openSync(logPath, 'a')
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', logFd, logFd] })
    closeSync(logFd)
    let exited = false
    const exitPromise = new Promise<void>((resolve) => {
      child.once('exit', () => {
        exited = true
        resolve()
      })
      child.once('error', () => {
        exited = true
        resolve()
      })
    })
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 15_000)
    let ready = false
    while (!exited && Date.now() < deadline) {
      const status = await fetch(`http://${host}/v2/`).then((r) => r.status, () => 0)
      if (status === 200 || (opts.auth !== undefined && status === 401)) {
        ready = true
        break
      }
      await sleep(50)
    }
    if (ready) {
      const stop = async (): Promise<void> => {
        if (!exited) {
          child.kill('SIGTERM')
          await Promise.race([exitPromise, sleep(5_000)])
          if (!exited) child.kill('SIGKILL')
          await Promise.race([exitPromise, sleep(2_000)])
        }
        await removeTree(dir)
        dropExit()
      }
      return { host, url: `http://${host}`, dir, ...(opts.auth !== undefined ? { auth: opts.auth } : {}), stop }
    }
    if (!exited) child.kill('SIGKILL')
    await exitPromise
    lastError = readFileSync(logPath, 'utf8').slice(-4000)
    if (!/address already in use/.test(lastError)) break
  }
  await removeTree(dir)
  dropExit()
  throw new Error(`docker-registry did not become ready; log tail:\n${lastError}`)
}

/** Version line of a tool, for test logs (`undefined` if it cannot run). */
export function toolVersion(cmd: string, args: readonly string[] = ['--version']): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]
  } catch {
    return undefined
  }
}
