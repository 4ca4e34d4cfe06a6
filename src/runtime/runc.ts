/**
 * runc and crun share one CLI: `<runtime> run --bundle DIR ID` runs a container in the foreground
 * (no terminal, stdio piped, stdin from /dev/null) and exits with the container's exit status;
 * `kill ID KILL` and `delete -f ID` stop and remove it.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { abortError } from '../errors.js'
import { registerCleanup } from './cleanup.js'
import { userNamespace } from '../host/user-namespace.js'
import type { OciSpec } from './oci-spec.js'
import type { OutputStream, Runtime } from './runtime.js'

const execFileP = promisify(execFile)
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface RuntimeOptions {
  /**
   * Keep the runtime's state (`--root`) in the step's bundle dir instead of the runtime's default,
   * /run/runc, which belongs to the host's root: a rootless build's containers leave nothing behind
   * when the step's dir goes. @default false
   */
  readonly stateInBundle?: boolean
}

/** A {@link Runtime} driving the runc-compatible binary at `binary`. */
export function ociRuntime(binary: string, opts: RuntimeOptions = {}): Runtime {
  return {
    binary,
    name: basename(binary),
    run: (spec, bundleDir, signal, onOutput) =>
      runContainer(binary, opts.stateInBundle ? ['--root', join(bundleDir, '.runc')] : [], spec, bundleDir, signal, onOutput),
  }
}

async function runContainer(
  binary: string,
  global: readonly string[],
  spec: OciSpec,
  bundleDir: string,
  signal: AbortSignal | undefined,
  onOutput: (stream: OutputStream, data: Buffer) => void,
): Promise<{ exitCode: number }> {
  if (signal?.aborted) throw abortError(signal)
  await writeFile(join(bundleDir, 'config.json'), JSON.stringify(spec))
  const id = `imagesmith-${process.pid}-${randomBytes(6).toString('hex')}`
  const dog = watchdog(binary, global, id)
  const child = spawn(binary, [...global, 'run', '--bundle', bundleDir, id], { stdio: ['ignore', 'pipe', 'pipe'] })
  const release = registerCleanup(`container ${id}`, () => {
    // Cleaned up here: the watchdog must not act later on (runc would make its state dir again in a removed step dir).
    dog?.kill('SIGKILL')
    for (const args of [['kill', id, 'KILL'], ['delete', '-f', id]]) {
      try {
        execFileSync(binary, [...global, ...args], { stdio: 'ignore', timeout: 5000 })
      } catch {
        // already gone
      }
    }
  })
  child.stdout.on('data', (d: Buffer) => onOutput('stdout', d))
  child.stderr.on('data', (d: Buffer) => onOutput('stderr', d))
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, sig) => resolve(code ?? 128 + (sig ? signalNumber(sig) : 0)))
  })

  let killing: Promise<void> | undefined
  const onAbort = () => {
    killing ??= (async () => {
      // The container may not exist yet (runc still creating it): retry until runc has exited.
      let done = false
      void exited.then(() => { done = true }, () => { done = true })
      for (let i = 0; i < 100 && !done; i++) {
        try {
          await execFileP(binary, [...global, 'kill', id, 'KILL'])
        } catch {
          // not created yet, or already stopped
        }
        await sleep(i < 10 ? 20 : 100)
      }
      if (!done) child.kill('SIGKILL')
    })()
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const exitCode = await exited
    if (signal?.aborted) throw abortError(signal)
    return { exitCode }
  } finally {
    signal?.removeEventListener('abort', onAbort)
    await killing
    if (signal?.aborted) await execFileP(binary, [...global, 'delete', '-f', id]).catch(() => undefined)
    dog?.kill('SIGKILL')
    release()
  }
}

/**
 * In a rootless build's worker: a process outside the worker's process group that kills and deletes
 * the container once the worker is gone, however it died (its stdin, a pipe from the worker, reads
 * EOF). A SIGKILLed worker runs no cleanup, and `runc run` neither dies with its parent nor takes the
 * container with it. A root build keeps no such helper (its cleanup registry is as before).
 */
function watchdog(binary: string, global: readonly string[], id: string): ChildProcess | undefined {
  if (!userNamespace()) return undefined
  // Only while the container's state is there: runc makes a missing --root dir, which would outlive the step dir.
  const state = global[0] === '--root' ? `${global[1]}/${id}` : '/'
  const script = 'read -r _; [ -d "$1" ] || exit 0; shift; "$@" kill "$0" KILL >/dev/null 2>&1; exec "$@" delete -f "$0" >/dev/null 2>&1'
  const dog = spawn('sh', ['-c', script, id, state, binary, ...global], { stdio: ['pipe', 'ignore', 'ignore'], detached: true })
  dog.on('error', () => undefined) // no sh: the cleanup registry still covers a worker that exits
  dog.stdin!.on('error', () => undefined)
  dog.unref()
  return dog
}

function signalNumber(sig: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 }
  return table[sig] ?? 0
}
