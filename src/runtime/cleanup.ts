/**
 * Process-level registry of things a build must undo if the process dies mid-step: overlay mounts,
 * running containers, bundle dirs. Each step registers an undo action while it holds the resource
 * and unregisters it when it released the resource itself.
 *
 * Undo actions are synchronous, because `exit` handlers cannot await. On SIGINT/SIGTERM the
 * registry runs every pending action (newest first) and, when nobody else listens for the signal,
 * re-raises it with the default disposition so the process still dies of it. The handlers are
 * installed only while something is registered, so an idle library changes no signal behaviour.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { isDeadTemp } from '../store/atomic-write.js'

type Undo = () => void

const pending = new Map<number, { what: string; undo: Undo }>()
let nextId = 1
let installed = false

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

function runAll(): void {
  const items = [...pending.entries()].reverse()
  pending.clear()
  for (const [, item] of items) {
    try {
      item.undo()
    } catch {
      // best effort: the next action may still succeed
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll()
  uninstall()
  // If we were the only listener, the default action (terminate) was suppressed by listening:
  // restore it by re-raising. Other listeners (a CLI) decide for themselves.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

function onExit(): void {
  runAll()
}

function install(): void {
  if (installed) return
  installed = true
  for (const s of SIGNALS) process.on(s, onSignal)
  process.on('exit', onExit)
}

function uninstall(): void {
  if (!installed) return
  installed = false
  for (const s of SIGNALS) process.off(s, onSignal)
  process.off('exit', onExit)
}

/**
 * Registers `undo` to run if the process exits or is signalled before the returned release function
 * is called. Calling the release function drops the action without running it.
 */
export function registerCleanup(what: string, undo: Undo): () => void {
  const id = nextId++
  pending.set(id, { what, undo })
  install()
  return () => {
    pending.delete(id)
    if (pending.size === 0) uninstall()
  }
}

/** What is currently registered (for tests and diagnostics). */
export function pendingCleanups(): string[] {
  return [...pending.values()].map((p) => p.what)
}

/** Synchronous lazy unmount, for exit paths. */
export function unmountSync(target: string): void {
  try {
    execFileSync('umount', [target], { stdio: 'ignore' })
  } catch {
    try {
      execFileSync('umount', ['-l', target], { stdio: 'ignore' })
    } catch {
      // not mounted (any more)
    }
  }
}

/** Synchronous recursive removal, for exit paths. */
export function removeSync(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true })
  } catch {
    // best effort
  }
}

/** Mount points at or below `dir`, deepest first, from /proc/self/mountinfo. */
export function mountsBelow(dir: string): string[] {
  let info = ''
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return []
  }
  const prefix = `${dir}/`
  return info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length)
}

/**
 * Removes step dirs (`<prefix>-<pid>-…`) in `workDir` left by processes that died without running
 * their cleanup (SIGKILL, power loss), unmounting whatever is still mounted in them first.
 * Cheap (one readdir when nothing is stale), so it runs before every step and keeps no memory of
 * which dirs it swept: two stores in one process share nothing.
 */
export function sweepDeadWorkDirs(workDir: string): void {
  let names: string[] = []
  try {
    names = readdirSync(workDir)
  } catch {
    return
  }
  for (const name of names) {
    if (!isDeadTemp(name, { stepDirs: true })) continue
    const dir = join(workDir, name)
    for (const point of mountsBelow(dir)) unmountSync(point)
    removeSync(dir)
  }
}

