/**
 * File creates for a big tree that move out of a slow inode group while the tree is written.
 *
 * Why: {@link spreadDir} probes a tree's dir once, before it is written, but the ext4 pathology it
 * avoids (tree-root.ts) can start mid-tree: the group's clean free inodes run out, and from there
 * every create scans the inodes deleted in the last minutes one by one. A cold build of 10,000
 * files right after another process made and deleted 100,000 took 8–11 s (5–9 s of it in the
 * kernel) instead of ~2.5 s.
 *
 * So each create is timed (a clock read, nothing more). Once most recent creates are slow, new files
 * are created in a staging dir made under the tree root instead, which Orlov puts in another group,
 * and renamed into place when written: the inode stays where it was made, the tree is the same. A
 * staging dir that turns slow in turn is replaced, a bounded number of times.
 *
 * Placement only: wherever a staging dir cannot be made, files are created in place as before.
 */
import { chmodSync, mkdirSync, openSync, renameSync, rmdirSync, rmSync, type PathLike } from 'node:fs'
import { tempPath } from '../store/atomic-write.js'
import { createCost, SLOW_CREATE_US } from './tree-root.js'

/** Creates judged at once: the last WINDOW, of which SLOW_SHARE slow ones mean the group is being scanned. */
const WINDOW = 8
const SLOW_SHARE = 6
/** Staging dirs made per tree at most; past that the last one is kept whatever it costs. */
const MAX_STAGES = 32
/** Tries per staging dir before one is kept unprobed. */
const ATTEMPTS = 4

export interface Created {
  readonly fd: number
  /** Where the file was made when not at its path: {@link CreateStaging.place} moves it there. */
  readonly staged?: string
}

export class CreateStaging {
  readonly #root: string | undefined
  readonly #dirs: string[] = []
  /** Dirs made and left empty so Orlov's count of dirs keeps the next one out of their group. */
  readonly #rejected: string[] = []
  #current: string | undefined
  #n = 0
  /** Bit i: whether the i-th last create was slow. */
  #recent = 0
  #slow = 0
  #count = 0

  readonly #clock: () => number

  /**
   * `root`: a {@link treeRoot} on the same filesystem as the tree; undefined: always in place.
   * `clock`: µs, monotonic (tests give their own).
   */
  constructor(root: string | undefined, clock: () => number = micros) {
    this.#root = root
    this.#clock = clock
  }

  /** Opens a new file (exclusive, 0600) for `path`, in place or in the staging dir. */
  create(path: PathLike): Created {
    const staged = this.#current === undefined ? undefined : `${this.#current}/${this.#n++}`
    const t0 = this.#clock()
    const fd = openSync(staged ?? path, 'wx', 0o600)
    this.#note(this.#clock() - t0)
    return staged === undefined ? { fd } : { fd, staged }
  }

  /** Moves a file made in staging to its path (after it was written and closed). */
  place(staged: string, path: PathLike): void {
    renameSync(staged, path)
  }

  /** Removes the staging dirs, with what a tree given up left in them. */
  close(): void {
    for (const d of [...this.#dirs, ...this.#rejected]) {
      try {
        rmSync(d, { recursive: true, force: true })
      } catch {
        // a sweep of dead temps takes it once we are gone (its name carries our owner tag)
      }
    }
    this.#dirs.length = 0
    this.#rejected.length = 0
    this.#current = undefined
  }

  #note(us: number): void {
    const slow = us > SLOW_CREATE_US ? 1 : 0
    const old = this.#count >= WINDOW ? (this.#recent >>> (WINDOW - 1)) & 1 : 0
    this.#recent = ((this.#recent << 1) | slow) >>> 0
    this.#slow += slow - old
    if (this.#count < WINDOW) this.#count++
    if (this.#slow >= SLOW_SHARE && this.#root !== undefined && this.#dirs.length < MAX_STAGES) this.#move()
  }

  /** A new staging dir, probed as spreadDir probes; the window starts over there. */
  #move(): void {
    this.#recent = 0
    this.#slow = 0
    this.#count = 0
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const dir = tempPath(this.#root!, 'stage')
      try {
        mkdirSync(dir, { mode: 0o700 })
        // Under a setgid root it would be setgid too, and what is made in it would take the root's
        // group where the tree's own dir gives ours (from-entries.ts chowns only what it must).
        chmodSync(dir, 0o700)
      } catch {
        rmdirQuiet(dir)
        return // creates stay where they are
      }
      let cost: number
      try {
        cost = createCost(dir)
      } catch {
        cost = 0 // a probe file left behind goes with the dir at close
      }
      if (cost <= SLOW_CREATE_US || attempt === ATTEMPTS) {
        this.#dirs.push(dir)
        this.#current = dir
        this.#n = 0
        return
      }
      this.#rejected.push(dir)
    }
  }
}

function micros(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

function rmdirQuiet(dir: string): void {
  try {
    rmdirSync(dir)
  } catch {
    // never made
  }
}
