/**
 * Starts the rootless worker: a Node process in a new user + mount namespace where it is root, as
 * `buildah unshare` and rootless podman run their storage and runtime.
 *
 * Capabilities are computed when a process execs, so the ids must be mapped before Node starts:
 * `unshare --user --mount` runs a shell that waits for one line on stdin; meanwhile this process
 * writes the maps with `newuidmap PID 0 UID 1 1 SUBUID N` (and newgidmap) and then sends the line,
 * and only then does the shell exec Node, which starts as root of the namespace with all
 * capabilities in it. Without a subordinate range, `--map-root-user` maps the user alone (and denies
 * setgroups, as the kernel requires for an unprivileged map).
 *
 * The mount namespace is private: every overlay the worker mounts goes away with it, whatever kills
 * it. The IPC channel passes through unshare and the shell to Node (NODE_CHANNEL_FD).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { readlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { RootlessPlan } from './prerequisites.js'

const execFileP = promisify(execFile)
const STARTUP_TIMEOUT_MS = 10_000

/**
 * argv that runs the worker entry with this Node: the built `rootless-worker.js` beside the bundle,
 * or, running from source (tests, tsx), `worker.ts` through tsx's loader.
 */
export function workerCommand(): string[] {
  const here = fileURLToPath(import.meta.url)
  if (here.endsWith('.ts')) {
    const loader = createRequire(here).resolve('tsx')
    return [process.execPath, '--import', pathToFileURL(loader).href, join(dirname(here), 'worker.ts')]
  }
  return [process.execPath, join(dirname(here), 'rootless-worker.js')]
}

/** The `newuidmap`/`newgidmap` arguments after the pid: root = the user, 1 … count = the range. */
export function mapArgs(own: number, range: { start: number; count: number }): string[] {
  return ['0', String(own), '1', '1', String(range.start), String(range.count)]
}

/**
 * Spawns the worker in its namespace and resolves once its ids are mapped and Node runs. The child
 * has an IPC channel (advanced serialization: Buffers and typed data cross as they are).
 */
export async function spawnWorker(plan: RootlessPlan, command: readonly string[] = workerCommand()): Promise<ChildProcess> {
  const ranged = plan.uidRange !== undefined && plan.gidRange !== undefined
  const nsArgs = ranged
    ? ['--user', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'read -r _ && exec "$@"', 'sh', ...command]
    : ['--user', '--map-root-user', '--mount', '--propagation', 'private', '--', ...command]
  // Its own process group: a terminal's Ctrl-C reaches the build process, which cancels through the
  // channel (the worker then fails with ABORTED, as a root build does); the worker never acts on it alone.
  const child = spawn(plan.tools.unshare, nsArgs, { stdio: ['pipe', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', detached: true })
  let stderrHint = ''
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', (e) => reject(workerError(`cannot start ${plan.tools.unshare}: ${e.message}`, {}, e)))
    })
    if (ranged) {
      await untilUnshared(child)
      const pid = String(child.pid)
      try {
        await execFileP(plan.tools.newuidmap!, [pid, ...mapArgs(plan.uid, plan.uidRange!)])
        await execFileP(plan.tools.newgidmap!, [pid, ...mapArgs(plan.gid, plan.gidRange!)])
      } catch (e) {
        stderrHint = String((e as { stderr?: unknown }).stderr ?? '').trim()
        throw workerError(
          `cannot map the subordinate ids of ${plan.user} (${plan.uidRange!.start}+${plan.uidRange!.count}) into the build's user namespace: ${stderrHint || (e as Error).message}`,
          { user: plan.user },
          e,
        )
      }
      child.stdin!.end('go\n')
    } else {
      child.stdin!.end()
    }
    return child
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
}

/** Waits until `unshare` has entered its new user namespace: maps written earlier would land in ours. */
async function untilUnshared(child: ChildProcess): Promise<void> {
  const ours = readlinkSync('/proc/self/ns/user')
  const deadline = Date.now() + STARTUP_TIMEOUT_MS
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw workerError(`unshare --user exited (${child.exitCode ?? child.signalCode}) before its namespace was mapped`, { exitCode: child.exitCode, signal: child.signalCode })
    }
    let ns: string | undefined
    try {
      ns = readlinkSync(`/proc/${child.pid}/ns/user`)
    } catch {
      // not there yet
    }
    if (ns !== undefined && ns !== ours) return
    if (Date.now() > deadline) throw workerError('unshare --user did not make a user namespace in time', {})
    await new Promise<void>((r) => (i < 50 ? setImmediate(r) : setTimeout(r, 2)))
  }
}

export function workerError(message: string, details: Record<string, unknown>, cause?: unknown): ImagesmithError {
  return new ImagesmithError(ErrorCodes.ROOTLESS_WORKER_FAILED, `rootless build: ${message}`, details, cause === undefined ? undefined : { cause })
}
