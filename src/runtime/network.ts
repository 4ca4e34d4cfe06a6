/**
 * The default network of a RUN step: a private network namespace with outbound access through
 * user-mode networking (slirp4netns, as rootless Docker and BuildKit use), the host's loopback
 * unreachable both as 127.0.0.1 (the namespace has its own loopback) and as slirp's gateway
 * 10.0.2.2 (`--disable-host-loopback`).
 *
 * The namespace is made before the container: a holder process (`unshare --net cat`) owns it, the
 * container joins it by path (OCI `linux.namespaces[].path`), so the runtime's own `run` keeps
 * reporting the container's exit status. Both helpers die with the step; if this process is killed
 * outright, the holder reads EOF on its stdin and slirp4netns sees its `--exit-fd` close, so
 * neither outlives the build even then.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readlinkSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { abortError, ErrorCodes, ImagesmithError } from '../errors.js'
import { registerCleanup } from './cleanup.js'
import { which } from './detect.js'

/**
 * slirp4netns's DNS forwarder (its `--configure` default; the gateway, i.e. the host, is 10.0.2.2
 * and unreachable, the container is 10.0.2.100).
 */
export const SLIRP_DNS = '10.0.2.3'

/** The helper binaries a private network needs, found on PATH. */
export interface NetworkTools {
  readonly slirp4netns: string
  readonly unshare: string
  readonly cat: string
}

const PACKAGES: Record<keyof NetworkTools, string> = { slirp4netns: 'slirp4netns', unshare: 'util-linux', cat: 'coreutils' }

/**
 * The tools for a private network, or NETWORK_TOOL_NOT_FOUND naming the Debian package: a RUN step
 * never falls back to the host's network because the user-mode stack is missing.
 */
export function networkTools(pathVar?: string): NetworkTools {
  const found: Partial<Record<keyof NetworkTools, string>> = {}
  for (const tool of Object.keys(PACKAGES) as (keyof NetworkTools)[]) {
    const p = which(tool, pathVar)
    if (!p) {
      const pkg = PACKAGES[tool]
      throw new ImagesmithError(
        ErrorCodes.NETWORK_TOOL_NOT_FOUND,
        `RUN's default network needs ${tool} (Debian/Ubuntu: apt-get install ${pkg}); it is not on PATH. ` +
          `Install it, or give the step network: 'none' (no network at all)`,
        { tool, package: pkg },
      )
    }
    found[tool] = p
  }
  return found as NetworkTools
}

/** A private network namespace with slirp4netns attached; `close` stops both helpers (idempotent). */
export interface PrivateNetwork {
  /** The namespace, for the OCI spec's network namespace `path`. */
  readonly netns: string
  /** pid of the process holding the namespace (slirp4netns's target). */
  readonly holderPid: number
  /** pid of slirp4netns. */
  readonly slirpPid: number
  /** Kills both helpers (SIGKILL); they are reaped in the background. */
  close(): Promise<void>
}

const STARTUP_TIMEOUT_MS = 10_000

/** Makes the namespace, starts slirp4netns on it and resolves once its tap0 is configured. */
export async function startPrivateNetwork(tools: NetworkTools, signal?: AbortSignal): Promise<PrivateNetwork> {
  if (signal?.aborted) throw abortError(signal)
  const children: ChildProcess[] = []
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }
  const release = registerCleanup('network helpers', killAll)
  const exits: Promise<void>[] = []
  const track = (c: ChildProcess) => {
    children.push(c)
    exits.push(new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) resolve()
      else c.once('close', () => resolve())
    }))
  }
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    killAll()
    // SIGKILL cannot be refused: nothing is left for the registry to do. Their exit is not awaited:
    // tearing down the tap device and the namespace takes the kernel 15-40 ms (RCU grace periods),
    // which the step need not wait for.
    release()
  }
  const onAbort = () => void close()
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    // stdin stays open (a pipe nobody writes to): cat holds the namespace until we end it or die.
    const holder = spawn(tools.unshare, ['--net', '--', tools.cat], { stdio: ['pipe', 'ignore', 'pipe'] })
    track(holder)
    const holderErr = collect(holder.stderr!)
    await spawned(holder)
    const netns = `/proc/${holder.pid}/ns/net`
    await untilUnshared(holder, netns, holderErr, signal)

    const slirp = spawn(
      tools.slirp4netns,
      ['--configure', '--mtu=65520', '--disable-host-loopback', '--ready-fd=3', '--exit-fd=4', String(holder.pid), 'tap0'],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    )
    track(slirp)
    const slirpErr = collect(slirp.stderr!)
    await spawned(slirp)
    await untilReady(slirp, slirpErr, signal)
    if (signal?.aborted) throw abortError(signal)
    return { netns, holderPid: holder.pid!, slirpPid: slirp.pid!, close }
  } catch (e) {
    await close()
    if (signal?.aborted) throw abortError(signal)
    throw e
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
}

function collect(stream: Readable): () => string {
  let text = ''
  stream.on('data', (d: Buffer) => {
    if (text.length < 4096) text += d.toString()
  })
  return () => text.trim()
}

function spawned(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', (e) => reject(setupError(`cannot start ${child.spawnfile}: ${e.message}`, e)))
  })
}

function setupError(message: string, cause?: unknown): ImagesmithError {
  return new ImagesmithError(ErrorCodes.RUN_SETUP_FAILED, `private network: ${message}`, {}, cause === undefined ? undefined : { cause })
}

/**
 * Waits until the holder has left this process's network namespace: slirp4netns joins whatever
 * namespace its target has, and must never be pointed at the host's.
 */
async function untilUnshared(holder: ChildProcess, netns: string, stderr: () => string, signal: AbortSignal | undefined): Promise<void> {
  const ours = readlinkSync('/proc/self/ns/net')
  const deadline = Date.now() + STARTUP_TIMEOUT_MS
  for (let i = 0; ; i++) {
    if (signal?.aborted) throw abortError(signal)
    if (holder.exitCode !== null || holder.signalCode !== null) throw setupError(`unshare --net exited (${holder.exitCode ?? holder.signalCode}): ${stderr()}`)
    let ns: string | undefined
    try {
      ns = readlinkSync(netns)
    } catch {
      // not readable yet
    }
    if (ns !== undefined && ns !== ours) return
    if (Date.now() > deadline) throw setupError('unshare --net did not make a network namespace in time')
    await new Promise<void>((r) => (i < 50 ? setImmediate(r) : setTimeout(r, 2)))
  }
}

/** Resolves when slirp4netns writes to its ready fd (tap0 is up and configured). */
function untilReady(slirp: ChildProcess, stderr: () => string, signal: AbortSignal | undefined): Promise<void> {
  const ready = slirp.stdio[3] as Readable
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => finish(setupError('slirp4netns did not become ready in time')), STARTUP_TIMEOUT_MS)
    const finish = (err?: Error) => {
      clearTimeout(timer)
      ready.off('data', onData)
      slirp.off('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err) reject(err)
      else resolve()
    }
    const onData = () => finish()
    const onClose = (code: number | null, sig: string | null) => finish(setupError(`slirp4netns exited (${code ?? sig}): ${stderr()}`))
    const onAbort = () => finish(abortError(signal!))
    ready.on('data', onData)
    slirp.on('close', onClose)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
