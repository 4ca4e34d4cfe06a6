/**
 * Running this checkout as the plain test users scripts/provision.sh makes (root only):
 * `imagesmith-rootless` (subordinate ids 200000-265535) and `imagesmith-norange` (none).
 *
 * The checkout may sit under a directory the users cannot enter (/root is 0700 in CI), so they run
 * from a readable copy under /var/tmp/imagesmith-rootless, keyed by the hash of the copied files'
 * contents and reused between runs; the test-bed bases get a readable copy there as well.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, chownSync, cpSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { distIsFresh } from '../../bin/dist-freshness.js'
import { runTool, type RunToolOptions, type ToolRequirement, type ToolResult } from './tools.js'
import { testbedDir, tmpDir } from './testbed.js'
import { writeFixtureContext } from '../fixtures/rootless/context.js'

// Process trees live in process-tree.ts; kept here too for suites that import them with the harness.
export { childPids, descendants } from './process-tree.js'

export const ROOTLESS_USER = 'imagesmith-rootless'
export const NORANGE_USER = 'imagesmith-norange'
/** The rootless user's subordinate range, as provision.sh writes it: first id and count. */
export const ROOTLESS_SUBIDS = { first: 200_000, count: 65_536 } as const

/** Where the readable copies live (sticky /var/tmp: kept across reboots and runs). */
export const SHARE_ROOT = '/var/tmp/imagesmith-rootless'

/** What a user needs of the checkout to run the library, its tests and its examples. */
const COPIED = ['src', 'dist', 'bin', 'test', 'examples', 'bench', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json', 'vitest.config.ts', 'tsup.config.ts']
/** The login PATH Debian gives a plain user: no sbin dirs, as on a laptop. */
export const USER_PATH = '/usr/local/bin:/usr/bin:/bin'

export interface UserInfo {
  readonly name: string
  readonly uid: number
  readonly gid: number
  readonly home: string
}

/** The passwd entry of `name`, or undefined when there is no such user. */
export function userInfo(name: string): UserInfo | undefined {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`))
  if (line === undefined) return undefined
  const f = line.split(':')
  return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? `/home/${name}` }
}

/**
 * Gate for the rootless suites: they run as root with both test users present. As root a
 * missing user is an error (provision.sh makes them; `npm test` runs it first); as anyone else
 * the suite skips, since only root can switch to the test users.
 */
export function requireRootlessBed(): ToolRequirement {
  if (process.getuid?.() !== 0) {
    const reason = `rootless suites drive the test users through runuser and need root (uid ${process.getuid?.()})`
    process.stderr.write(`SKIP: ${reason}\n`)
    return { skip: true, reason }
  }
  const missing = [ROOTLESS_USER, NORANGE_USER].filter((u) => userInfo(u) === undefined)
  if (missing.length > 0) {
    throw new Error(`testbed: missing rootless test users ${missing.join(', ')}: run \`bash scripts/provision.sh\` as root`)
  }
  return { skip: false, reason: '' }
}

// ---------------------------------------------------------------------------
// Readable copies

function listFiles(root: string, rel: string, out: string[]): void {
  const abs = join(root, rel)
  const st = lstatSync(abs)
  if (st.isDirectory()) {
    for (const name of readdirSync(abs).sort()) {
      if (name === 'node_modules' || name === 'dist' || name === '.git') continue
      listFiles(root, join(rel, name), out)
    }
  } else {
    out.push(rel)
  }
}

/** sha256 over the copied paths and their bytes (links by target): the copy's identity. */
function checkoutHash(root: string): string {
  const h = createHash('sha256')
  const files: string[] = []
  for (const top of COPIED) if (existsSync(join(root, top))) listFiles(root, top, files)
  for (const rel of files) {
    const abs = join(root, rel)
    const st = lstatSync(abs)
    h.update(`${rel}\0${st.mode & 0o777}\0`)
    h.update(st.isSymbolicLink() ? `->${realpathSync(abs)}` : readFileSync(abs))
    h.update('\0')
  }
  return h.digest('hex').slice(0, 16)
}

/** True when every user can reach and read `path` (each ancestor searchable). */
function readableByOthers(path: string): boolean {
  let p = realpathSync(path)
  try {
    if ((statSync(p).mode & 0o005) !== 0o005) return false
    while (p !== '/') {
      p = dirname(p)
      if ((statSync(p).mode & 0o001) === 0) return false
    }
    return true
  } catch {
    return false
  }
}

/** Makes `dir` (a tree made by root) readable for every user: a+rX. */
function openUp(dir: string): Promise<ToolResult> {
  return runTool('chmod', ['-R', 'a+rX', dir])
}

/**
 * Publishes a tree at `final` once: filled in a temp dir by `fill`, then renamed. Several test
 * processes may race here; the first rename wins and the others drop their copy.
 */
async function publishOnce(final: string, fill: (tmp: string) => Promise<void>): Promise<string> {
  if (existsSync(join(final, '.complete'))) {
    const now = new Date()
    utimesSync(final, now, now) // in use: pruneOldCopies keeps it
    return final
  }
  mkdirSync(dirname(final), { recursive: true, mode: 0o755 })
  const tmp = mkdtempSync(`${final}.tmp-`)
  try {
    await fill(tmp)
    await openUp(tmp)
    writeFileSync(join(tmp, '.complete'), '')
    try {
      renameSync(tmp, final)
    } catch (err) {
      if (!existsSync(join(final, '.complete'))) throw err
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  return final
}

/** node_modules the users can read: the checkout's own when readable, else one copy per lockfile. */
async function readableNodeModules(checkout: string): Promise<string> {
  const nm = join(checkout, 'node_modules')
  if (readableByOthers(nm)) return realpathSync(nm)
  const lock = createHash('sha256').update(readFileSync(join(checkout, 'package-lock.json'))).digest('hex').slice(0, 16)
  const final = join(SHARE_ROOT, `node_modules-${lock}`)
  await publishOnce(final, async (tmp) => {
    await runTool('cp', ['-a', `${realpathSync(nm)}/.`, tmp], { timeoutMs: 600_000 })
  })
  return final
}

let copyPromise: Promise<string> | undefined

/**
 * A copy of this checkout (sources, tests, examples, bench) every user can read, with a
 * node_modules link, at /var/tmp/imagesmith-rootless/<hash>/. Made once per content hash.
 */
export function readableCheckout(checkout: string = process.cwd()): Promise<string> {
  copyPromise ??= (async () => {
    mkdirSync(SHARE_ROOT, { recursive: true, mode: 0o755 })
    // The users cannot write to the copy, so its dist/ must be fresh (bin/dist-freshness.js) or the
    // CLI and the test setup would try to rebuild it there: build it here first, as the setup does.
    if (!distIsFresh(checkout)) await runTool(process.execPath, [join(checkout, 'node_modules', 'tsup', 'dist', 'cli-default.js'), '--silent'], { cwd: checkout, timeoutMs: 600_000 })
    const nm = await readableNodeModules(checkout)
    const final = join(SHARE_ROOT, checkoutHash(checkout))
    pruneOldCopies([final, nm])
    return publishOnce(final, async (tmp) => {
      for (const top of COPIED) {
        if (existsSync(join(checkout, top))) cpSync(join(checkout, top), join(tmp, top), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true, filter: (src) => !src.includes('/node_modules') })
      }
      symlinkSync(nm, join(tmp, 'node_modules'))
      // Copied dirs are newer than the copied bundle: make dist/ newer than its sources again.
      const later = new Date(Date.now() + 1000)
      for (const f of existsSync(join(tmp, 'dist')) ? readdirSync(join(tmp, 'dist')) : []) utimesSync(join(tmp, 'dist', f), later, later)
    })
  })()
  copyPromise.catch(() => {
    copyPromise = undefined
  })
  return copyPromise
}

let basesPromise: Promise<string> | undefined

/**
 * The provisioned bases (busybox, and debian when present) where the users can read them, laid out
 * as the test bed (stamps included): pass it as IMAGESMITH_TESTBED. Files are hard links to root's
 * cache when it shares the filesystem, else copies.
 */
export function readableTestbed(): Promise<string> {
  basesPromise ??= (async () => {
    const src = testbedDir()
    const names = ['busybox', 'debian'].filter((b) => existsSync(join(src, `${b}.stamp`)))
    const key = createHash('sha256').update(names.map((b) => `${b}=${readFileSync(join(src, `${b}.stamp`), 'utf8')}`).join('\n')).digest('hex').slice(0, 16)
    return publishOnce(join(SHARE_ROOT, `testbed-${key}`), async (tmp) => {
      for (const b of names) {
        for (const entry of [`${b}.tar`, `${b}-rootfs.tar`, `${b}-oci`, `${b}.stamp`]) linkOrCopy(join(src, entry), join(tmp, entry))
      }
    })
  })()
  basesPromise.catch(() => {
    basesPromise = undefined
  })
  return basesPromise
}

function linkOrCopy(from: string, to: string): void {
  if (lstatSync(from).isDirectory()) {
    mkdirSync(to)
    for (const name of readdirSync(from)) linkOrCopy(join(from, name), join(to, name))
    return
  }
  try {
    linkSync(from, to)
  } catch {
    cpSync(from, to)
  }
}

/** Removes copies of other checkouts older than a day (a CI machine keeps only recent ones). */
export function pruneOldCopies(keep: readonly string[]): void {
  if (!existsSync(SHARE_ROOT)) return
  const dayAgo = Date.now() - 86_400_000
  for (const name of readdirSync(SHARE_ROOT)) {
    const p = join(SHARE_ROOT, name)
    if (keep.includes(p)) continue
    try {
      if (statSync(p).mtimeMs < dayAgo) rmSync(p, { recursive: true, force: true })
    } catch {
      // another process removed it
    }
  }
}

// ---------------------------------------------------------------------------
// Running as a user

export interface AsUserOptions extends Omit<RunToolOptions, 'env'> {
  /** Variables on top of the plain login environment (HOME, USER, LOGNAME, PATH, TMPDIR=/tmp). */
  readonly env?: Readonly<Record<string, string>>
}

/** The environment a plain login of `user` has, plus `extra`. */
export function userEnv(user: UserInfo, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { HOME: user.home, USER: user.name, LOGNAME: user.name, PATH: USER_PATH, TMPDIR: '/tmp', LANG: 'C.UTF-8', ...extra }
}

/** runuser's arguments running `argv` as `name` with a plain login environment plus `env`. */
export function userArgv(name: string, argv: readonly string[], env: Readonly<Record<string, string>> | undefined): string[] {
  const user = userInfo(name)
  if (user === undefined) throw new Error(`no user ${name}: run \`bash scripts/provision.sh\` as root`)
  const vars = Object.entries(userEnv(user, env)).map(([k, v]) => `${k}=${v}`)
  // runuser opens a PAM session as a login would; env -i keeps root's environment out.
  return ['-u', name, '--', 'env', '-i', ...vars, ...argv]
}

/** Runs `argv` as `user` (plain login environment), like runTool. */
export function runAsUser(user: string, argv: readonly string[], opts: AsUserOptions = {}): Promise<ToolResult> {
  const { env, ...rest } = opts
  return runTool('runuser', userArgv(user, argv, env), rest)
}

/** Starts `argv` as `user` without waiting; `child.pid` is runuser's, see {@link userChildPid}. */
export function spawnAsUser(user: string, argv: readonly string[], opts: { env?: Readonly<Record<string, string>>; cwd?: string } = {}): ChildProcess {
  return spawn('runuser', userArgv(user, argv, opts.env), { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
}


// Runs "$@" as root of a new user + mount namespace holding the caller's id (as 0) and the first
// subordinate range of /etc/subuid and /etc/subgid (as 1…N): what `buildah unshare` gives, and the
// namespace a rootless build's worker runs in. The ids are mapped before the command execs, so it
// starts with every capability of the namespace.
const IN_NAMESPACE = String.raw`set -eu
me=$(id -un)
urange=$(awk -F: -v u="$me" '$1 == u { print $2, $3; exit }' /etc/subuid)
grange=$(awk -F: -v u="$me" '$1 == u { print $2, $3; exit }' /etc/subgid)
if [ -z "$urange" ] || [ -z "$grange" ]; then echo "in-namespace: $me has no subordinate range" >&2; exit 125; fi
fifo=$(mktemp -u /tmp/ism-ns-go.XXXXXX)
mkfifo -m 0600 "$fifo"
unshare --user --mount --propagation private -- sh -c 'read -r _ < "$0"; rm -f "$0"; exec "$@"' "$fifo" "$@" &
pid=$!
ours=$(readlink /proc/self/ns/user)
while [ "$(readlink /proc/$pid/ns/user 2>/dev/null || echo "$ours")" = "$ours" ]; do sleep 0.01; done
newuidmap "$pid" 0 "$(id -u)" 1 1 $urange
newgidmap "$pid" 0 "$(id -g)" 1 1 $grange
echo go > "$fifo"
wait "$pid"
`

/** argv running `argv` in a fresh user namespace (see IN_NAMESPACE above); run it as the test user. */
export function inUserNamespaceArgv(argv: readonly string[]): string[] {
  return ['bash', '-c', IN_NAMESPACE, 'in-namespace', ...argv]
}

/** A temp dir (see tmpDir) owned by `user`, for its stores and outputs; root removes it in cleanupTmpDirs. */
export async function userTmpDir(user: string, prefix = 'ism-rl-'): Promise<string> {
  const info = userInfo(user)
  if (info === undefined) throw new Error(`no user ${user}`)
  const dir = await tmpDir(prefix)
  chownSync(dir, info.uid, info.gid)
  return dir
}

/** A temp dir every user can read (a build context handed to the users). */
export async function sharedTmpDir(prefix = 'ism-rl-ctx-'): Promise<string> {
  const dir = await tmpDir(prefix)
  chmodSync(dir, 0o755)
  return dir
}

export interface FixtureOutcome {
  readonly ok: boolean
  readonly digest?: string
  readonly configDigest?: string
  readonly layers?: readonly string[]
  readonly cacheHits?: number
  readonly name?: string
  readonly code?: string
  readonly message?: string
  readonly details?: Record<string, unknown>
  /** Everything the build printed before its RESULT line (RUN output). */
  readonly output: string
  readonly stderr: string
}

/** The RESULT line test/fixtures/rootless/build.ts prints last. */
export function parseOutcome(stdout: string, stderr: string): FixtureOutcome {
  const at = stdout.lastIndexOf('\nRESULT ')
  const line = at >= 0 ? stdout.slice(at + 8).split('\n')[0]! : undefined
  if (line === undefined) throw new Error(`fixture build printed no RESULT line\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`)
  return { ...(JSON.parse(line) as Omit<FixtureOutcome, 'output' | 'stderr'>), output: stdout.slice(0, at), stderr }
}

export interface FixtureJob {
  readonly case: string
  readonly busybox: string
  readonly context: string
  /** Absent: the user's default store under its cache dir. */
  readonly cacheDir?: string
  readonly dest?: string
  /** Tag of the output (`-t`); only the archive's index names it, the image digest is the same without. */
  readonly tag?: string
}

/** argv running one fixture build (test/fixtures/rootless/build.ts) from the readable copy. */
export function fixtureBuildArgv(copy: string, job: FixtureJob): string[] {
  return nodeTsArgv(copy, join(copy, 'test', 'fixtures', 'rootless', 'build.ts'), [JSON.stringify(job)])
}

/**
 * Runs one fixture build as `user` (undefined: as root, with the same plain environment and the
 * same copy of the code), SOURCE_DATE_EPOCH unset: builds are reproducible without it.
 */
export async function runFixture(user: string | undefined, copy: string, job: FixtureJob, env: Readonly<Record<string, string>> = {}): Promise<FixtureOutcome> {
  const allEnv = { ...env }
  const argv = fixtureBuildArgv(copy, job)
  const r = user === undefined
    ? await runTool('env', ['-i', ...Object.entries(userEnv({ name: 'root', uid: 0, gid: 0, home: '/root' }, allEnv)).map(([k, v]) => `${k}=${v}`), ...argv], { cwd: copy, allowFailure: true, timeoutMs: 300_000 })
    : await runAsUser(user, argv, { cwd: copy, env: allEnv, allowFailure: true, timeoutMs: 300_000 })
  return parseOutcome(r.stdout, r.stderr)
}



/** `node` with tsx's loader, from the readable copy: argv for running a TypeScript file as a user. */
export function nodeTsArgv(copy: string, script: string, args: readonly string[] = []): string[] {
  return [process.execPath, '--import', join(copy, 'node_modules', 'tsx', 'dist', 'loader.mjs'), script, ...args]
}

/** What every fixture suite starts from: the readable checkout, the readable busybox base and a fresh fixture context. */
export async function fixtureBed(): Promise<{ copy: string; busybox: string; context: string }> {
  const [copy, busybox] = await Promise.all([readableCheckout(), readableTestbed().then((d) => join(d, 'busybox.tar'))])
  const context = await sharedTmpDir()
  writeFixtureContext(context)
  return { copy, busybox, context }
}
