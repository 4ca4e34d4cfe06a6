/**
 * A whole context tree's fingerprint, taken by GNU find in a child process: every entry's name, type,
 * mode, owner, device, inode, link count, size, mtime, ctime and link target, hashed. A COPY whose
 * probe record matches takes its content key from one small file and never walks the tree in Node
 * (the walk, the entries and their garbage were half a no-op build's CPU on a 10k-file context).
 *
 * find runs beside the process's own start: the CLI starts it before the build script is loaded
 * ({@link startTreeProbe}), so on two cores it costs no wall time, and it lists the 10k-file bench
 * tree in ~20 ms of CPU against ~70 ms for the Node walk and its entries.
 *
 * It lists more than any COPY reads (ignored and unused files too): a change anywhere only turns a
 * probe hit into the ordinary walk, which is exact by itself. A probe that cannot be taken (no GNU
 * find, an unreadable dir, more than {@link MAX_ENTRIES} entries) is none, and the walk runs as before.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { resolve } from 'node:path'
import { racyWindowMs } from './content-key.js'

export interface TreeProbe {
  /** The absolute directory listed. */
  readonly dir: string
  /** sha256 (hex) of the listing. */
  readonly digest: string
  /**
   * Whether every entry's mtime and ctime lay outside the racy window before the probe started:
   * only then may a record be written under it, since a later write then always shows as another
   * time (one within the window could leave both times as they were, and the listing with them).
   */
  settled(): boolean
}

/** Beyond this many entries the probe gives up (and is killed): the walk, which skips ignored dirs, is cheaper then. */
export const MAX_ENTRIES = 100_000
/** The listing is kept until the build is done with it: long names (up to 4 KiB a path) are bounded here. */
const MAX_BYTES = 32 << 20

// Each entry: its name, NUL, the fields (the link target last: only it may hold spaces), NUL, newline.
// A name never holds NUL, so no two trees give the same listing. Times are in seconds with ns digits.
export const LISTING_FORMAT = '%P\\0%y %m %U:%G %D:%i %n %s %T@ %C@ %l\\0\\n'

/** A listing under way. */
interface Running {
  readonly result: Promise<TreeProbe | undefined>
  /** Whether the child keeps the process alive: only while a build waits for it. */
  hold(on: boolean): void
  kill(): void
}

/**
 * Lists `dir` now. Resolves undefined when it cannot (find is missing or fails, the tree has more
 * than `maxEntries` entries or a listing over 32 MiB, it is killed); never rejects.
 */
function spawnProbe(dir: string, maxEntries: number): Running {
  const abs = resolve(dir)
  let child: ReturnType<typeof spawn> | undefined
  const result = new Promise<TreeProbe | undefined>((done) => {
    const started = Date.now()
    const hash = createHash('sha256')
    const chunks: Buffer[] = []
    let entries = 0
    let bytes = 0
    let over = false
    try {
      // -H: a context given as a symlink is listed as the dir it names. The path is absolute, so it
      // is never taken for an expression; LC_ALL=C keeps the time format plain.
      child = spawn('find', ['-H', abs, '-printf', LISTING_FORMAT], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, LC_ALL: 'C' } })
    } catch {
      done(undefined)
      return
    }
    const c = child
    c.on('error', () => done(undefined))
    c.stdout!.on('data', (b: Buffer) => {
      if (over) return
      for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) entries++
      bytes += b.length
      if (entries > maxEntries || bytes > MAX_BYTES) {
        over = true
        c.kill('SIGKILL')
        return
      }
      hash.update(b)
      chunks.push(b)
    })
    c.on('close', (code) => {
      if (code !== 0 || over) return done(undefined)
      const digest = hash.digest('hex')
      let settled: boolean | undefined
      done({ dir: abs, digest, settled: () => (settled ??= listingSettled(Buffer.concat(chunks).toString('latin1'), started)) })
    })
  })
  return {
    result,
    hold(on) {
      const handles = [child, child?.stdout as { ref?(): void; unref?(): void } | null | undefined]
      for (const h of handles) (on ? h?.ref?.() : h?.unref?.())
    },
    kill: () => child?.kill('SIGKILL'),
  }
}

/**
 * Lists `dir` now (see {@link spawnProbe}); `signal` kills the listing and resolves undefined.
 */
export function probeTree(dir: string, opts: { signal?: AbortSignal; maxEntries?: number } = {}): Promise<TreeProbe | undefined> {
  return taken(spawnProbe(dir, opts.maxEntries ?? MAX_ENTRIES), opts.signal)
}

function taken(run: Running, signal: AbortSignal | undefined): Promise<TreeProbe | undefined> {
  if (signal?.aborted) {
    run.kill()
    return Promise.resolve(undefined)
  }
  run.hold(true)
  const onAbort = () => run.kill()
  signal?.addEventListener('abort', onAbort, { once: true })
  return run.result.finally(() => signal?.removeEventListener('abort', onAbort))
}

/** Whether no entry of a listing changed within its racy window before `started` (ms since the epoch). */
function listingSettled(listing: string, started: number): boolean {
  // Fields are every second NUL-separated token: "type mode uid:gid dev:ino nlink size mtime ctime target".
  const tokens = listing.split('\0')
  for (let i = 1; i < tokens.length; i += 2) {
    const f = tokens[i]!.split(' ', 8)
    const mtimeMs = Number(f[6]) * 1000
    const ctimeMs = Number(f[7]) * 1000
    if (!Number.isFinite(mtimeMs) || !Number.isFinite(ctimeMs)) return false
    const racy = racyWindowMs({ mtimeMs, ctimeMs })
    if (started - mtimeMs <= racy || started - ctimeMs <= racy) return false
  }
  return true
}

const started = new Map<string, Running>()

/**
 * Starts a probe of `dir` for the next build of that context in this process to take: the CLI calls
 * it before it loads the build script, so the listing is ready when the first COPY asks. Until one
 * takes it, it does not keep the process alive (a command that fails first exits at once; find then
 * ends on its closed pipe).
 */
export function startTreeProbe(dir: string): void {
  const abs = resolve(dir)
  if (started.has(abs)) return
  const run = spawnProbe(abs, MAX_ENTRIES)
  run.hold(false)
  started.set(abs, run)
}

/** Whether a probe of `dir` was started and waits to be taken. */
export function probeStarted(dir: string): boolean {
  return started.has(resolve(dir))
}

/**
 * The probe started for `dir`, taken (a later build starts its own: a probe stands for the tree as
 * it was when it was taken), else a new one.
 */
export function takeTreeProbe(dir: string, signal?: AbortSignal): Promise<TreeProbe | undefined> {
  const abs = resolve(dir)
  const early = started.get(abs)
  started.delete(abs)
  return early ? taken(early, signal) : probeTree(abs, signal ? { signal } : {})
}
