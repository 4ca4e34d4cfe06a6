/**
 * Who wrote a temp file, a lease or a lock in a store, and whether that writer still lives.
 *
 * A pid alone does not say: pids repeat across pid namespaces, and CI jobs mount one cache dir into
 * several containers, each with its own pids. A live build in one container then looks dead to a
 * prune or a temp sweep in another (its pid is unknown there) and has its files removed under it.
 * So each process that opens a store claims an owner id there: `<store>/owners/<id>.lock`, a file
 * it keeps open with an exclusive flock(2) on it. The kernel drops that lock when the process dies
 * however it dies, and a try-lock from any namespace on the host sees whether it is held. Names
 * the process writes carry its tag `<pid>-o<id>`; the pid is for people, and for names written
 * before owner ids (or on hosts without flock(1)), which are judged by pid as before.
 *
 * Node has no flock: `flock -n 3` (util-linux) is run once per store with the lock file's open
 * description as its fd 3. flock(2) locks belong to the open file description, so the lock stays
 * when flock(1) exits and goes when this process (the description's last holder) ends. libuv opens
 * files close-on-exec, so no later child inherits it.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { isProcessAlive } from './process.js'

const ID = randomBytes(6).toString('hex')
const ID_PATTERN = /^[0-9a-f]{12}$/
/** A lock found held counts as held for this long (a sweep judges many names of one writer); 'free' is always asked anew. */
const HELD_TTL_MS = 500

/** Dirs where this process holds its owner lock (one per store it wrote to). */
const claimed = new Set<string>()
/** Owner dirs of every store this process opened: where other writers' locks are looked up. */
const known = new Set<string>()
let claimFailed = false
const heldCache = new Map<string, number>()
/** A read of /proc/locks serves the checks of this long (a sweep's); it only ever says 'held'. */
const LOCKS_TTL_MS = 100
let locksRead: { at: number; inodes: Set<string> } | undefined

/** An owner tag inside a name, as a regex source: `<pid>` or `<pid>-o<id>` (see {@link ownerTag}). */
export const OWNER_TAG_SOURCE = String.raw`\d+(?:-o[0-9a-f]{12})?`

/** A writer as a name records it: its pid, and its owner id when it had claimed one. */
export interface Owner {
  readonly pid: number
  readonly id?: string
}

/**
 * This process's tag for names and lock files: `<pid>-o<id>` once it holds an owner lock,
 * `<pid>` before (or where flock(1) is missing).
 */
export function ownerTag(): string {
  return claimed.size > 0 ? `${process.pid}-o${ID}` : String(process.pid)
}

/** Makes `dir` (a store's `owners/`) a place where {@link isOwnerAlive} looks writers up. No I/O. */
export function knowOwners(dir: string): void {
  known.add(dir)
}

/**
 * Holds this process's owner lock in `dir` (a store's `owners/`), once per dir. Synchronous (one
 * short child process, ~5 ms) so a store is claimed before it writes anything. Returns false where
 * it cannot (no flock(1), a read-only store): names then carry the pid alone, judged as before.
 */
export function claimOwner(dir: string): boolean {
  if (claimed.has(dir)) return true
  known.add(dir)
  if (claimFailed) return false
  const final = join(dir, `${ID}.lock`)
  // Locked under a temp name, then renamed: a `<id>.lock` that is not locked has a dead owner.
  const tmp = join(dir, `${ID}.lock.tmp-${process.pid}`)
  let fd: number | undefined
  let noFlock = false
  try {
    mkdirSync(dir, { recursive: true })
    fd = openSync(tmp, 'w', 0o644)
    const r = spawnSync('flock', ['-x', '-n', '3'], { stdio: ['ignore', 'ignore', 'ignore', fd], timeout: 10_000 })
    noFlock = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
    if (r.status !== 0) throw new Error(`flock exited ${r.status ?? r.signal ?? r.error?.message}`)
    renameSync(tmp, final)
  } catch (e) {
    if (fd !== undefined) closeSync(fd)
    rmSync(tmp, { force: true })
    // Without flock(1) no store can be claimed: not tried again. A read-only store fails alone.
    if (noFlock) claimFailed = true
    return false
  }
  // The fd stays open for the life of the process: it is the lock.
  claimed.add(dir)
  return true
}

/** Parses `<pid>` or `<pid>-o<id>` (the whole string). */
export function parseOwnerTag(tag: string): Owner | undefined {
  const dash = tag.indexOf('-o')
  const pidText = dash < 0 ? tag : tag.slice(0, dash)
  const id = dash < 0 ? undefined : tag.slice(dash + 2)
  if (!/^\d{1,10}$/.test(pidText) || (id !== undefined && !ID_PATTERN.test(id))) return undefined
  const pid = Number(pidText)
  return pid > 0 ? { pid, ...(id ? { id } : {}) } : undefined
}

/** Whether `owner` is this process. */
export function isSelf(owner: Owner): boolean {
  return owner.id !== undefined ? owner.id === ID : owner.pid === process.pid
}

/**
 * Whether the writer `owner` may still be alive. With an owner id: its lock file in a store this
 * process knows is held (alive) or not (dead, and the file is removed). A lock file found in none
 * of them (removed as dead before, or a store this process never opened) leaves the pid to judge,
 * as for names without an owner id: right within one pid namespace; across namespaces it can only
 * misjudge a writer of another store that writes into the same folder outside any store.
 */
export function isOwnerAlive(owner: Owner): boolean {
  if (isSelf(owner)) return true
  if (owner.id !== undefined) {
    for (const dir of known) {
      const lock = join(dir, `${owner.id}.lock`)
      const state = lockState(lock)
      if (state === 'missing') continue
      if (state === 'held') return true
      rmSync(lock, { force: true })
      return false
    }
  }
  return isProcessAlive(owner.pid)
}

/** Removes the lock files of dead owners in `dir` (a prune's job: each costs a try-lock); returns how many. */
export function sweepDeadOwners(dir: string): number {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return 0
  }
  let removed = 0
  for (const name of names) {
    const id = name.endsWith('.lock') ? name.slice(0, -'.lock'.length) : undefined
    if (!id || !ID_PATTERN.test(id) || id === ID) continue
    if (lockState(join(dir, name)) !== 'free') continue
    rmSync(join(dir, name), { force: true })
    removed++
  }
  return removed
}

type LockState = 'held' | 'free' | 'missing'

/**
 * Whether the lock on `path` is held. /proc/locks first: read in the host's pid namespace it lists
 * every held flock by inode, which answers 'held' without starting a process (a sweep judges many
 * names). In another pid namespace it hides locks whose taker it cannot see (ours were taken by
 * flock(1), long gone), so it never answers 'free': a try-lock does (flock(1) fails while the owner
 * holds its exclusive lock).
 */
function lockState(path: string): LockState {
  let ino: number
  try {
    ino = statSync(path).ino
  } catch {
    return 'missing'
  }
  const seen = heldCache.get(path)
  if (seen !== undefined && Date.now() - seen < HELD_TTL_MS) return 'held'
  if (listedLocks().has(String(ino))) {
    heldCache.set(path, Date.now())
    return 'held'
  }
  const r = spawnSync('flock', ['-n', '-s', path, 'true'], { stdio: 'ignore', timeout: 10_000 })
  if (r.status === 0) return existsSync(path) ? 'free' : 'missing'
  // 1: held. Anything else (flock(1) missing, a timeout) cannot say it is free.
  heldCache.set(path, Date.now())
  return 'held'
}

/** Inodes with a FLOCK listed in /proc/locks (`1: FLOCK  ADVISORY  WRITE 123 fe:00:456 0 EOF`); empty without procfs. */
function listedLocks(): Set<string> {
  const now = Date.now()
  if (locksRead && now - locksRead.at < LOCKS_TTL_MS) return locksRead.inodes
  const inodes = new Set<string>()
  let text = ''
  try {
    text = readFileSync('/proc/locks', 'latin1')
  } catch {
    /* no procfs: every answer comes from flock(1) */
  }
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    // A waiter's line reads `1: -> FLOCK …`: only holders count.
    if (f[1] !== 'FLOCK' || f[5] === undefined) continue
    inodes.add(f[5].slice(f[5].lastIndexOf(':') + 1))
  }
  locksRead = { at: now, inodes }
  return inodes
}
