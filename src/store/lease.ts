import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { isProcessAlive } from '../util/process.js'
import { writeFileAtomic } from './atomic-write.js'
import type { StoreLayout } from './layout.js'

/** What one build process holds: prune leaves all of it alone while `pid` lives. */
export interface LeaseRecord {
  readonly pid: number
  /** ISO 8601: when the build took the lease. */
  readonly started: string
  readonly cacheKeys: readonly string[]
  readonly blobs: readonly string[]
  /** Snapshot diffIDs (unpacked layers a RUN may mount). */
  readonly snapshots: readonly string[]
}

export interface LeaseItems {
  readonly cacheKeys?: readonly string[]
  readonly blobs?: readonly string[]
  readonly snapshots?: readonly string[]
}

type Kind = keyof LeaseItems
const KINDS: readonly Kind[] = ['cacheKeys', 'blobs', 'snapshots']
const GC_POLL_MS = 25

/**
 * A build's lease on the store (`leases/<pid>-<rand>.json`). The store's read paths call
 * {@link hold} before they look: the item is written to the lease file, then the holder waits
 * while a prune runs (`gc.lock`), and only then checks that the item exists. A prune reads the
 * leases after taking `gc.lock`, so either it saw the item, or the holder waited for it to end and
 * finds the item gone (a cache miss, rebuilt), never deleted under its feet. Holds before
 * {@link begin} and after {@link release} cost nothing (commands that hold no build).
 */
export class Lease {
  readonly #layout: StoreLayout
  readonly #held: Record<Kind, Set<string>> = { cacheKeys: new Set(), blobs: new Set(), snapshots: new Set() }
  /** How many items of each kind the last completed write held (sets only grow while active). */
  #durable = 0
  #path?: string
  #started = ''
  #chain: Promise<void> = Promise.resolve()
  #queued?: Promise<void>

  constructor(layout: StoreLayout) {
    this.#layout = layout
  }

  get active(): boolean {
    return this.#path !== undefined
  }

  /** Starts holding: writes an empty lease naming this process. */
  async begin(): Promise<void> {
    if (this.#path) return
    await fsp.mkdir(this.#layout.dir('leases'), { recursive: true })
    this.#path = join(this.#layout.dir('leases'), `${process.pid}-${randomBytes(6).toString('hex')}.json`)
    this.#started = new Date().toISOString()
    await this.#flush()
  }

  #count(): number {
    return KINDS.reduce((n, k) => n + this.#held[k].size, 0)
  }

  /** Adds items to the lease, on disk, then waits out a running prune. */
  async hold(items: LeaseItems): Promise<void> {
    if (!this.#path) return
    this.add(items)
    if (this.#count() > this.#durable) await this.#flush()
    await waitForGc(this.#layout.gcLock())
  }

  /** Adds items without waiting (sync callers); the next {@link hold} or flush writes them. */
  add(items: LeaseItems): void {
    if (!this.#path) return
    for (const k of KINDS) for (const v of items[k] ?? []) this.#held[k].add(v)
    if (this.#count() > this.#durable) void this.#flush().catch(() => undefined)
  }

  /** Writes coalesce: holds arriving while a write is queued share it. */
  #flush(): Promise<void> {
    if (!this.#queued) {
      const next = this.#chain.then(() => {
        this.#queued = undefined
        return this.#write()
      })
      this.#queued = next
      this.#chain = next.catch(() => undefined)
    }
    return this.#queued
  }

  async #write(): Promise<void> {
    const path = this.#path
    if (!path) return
    const count = this.#count()
    const record: LeaseRecord = {
      pid: process.pid,
      started: this.#started,
      cacheKeys: [...this.#held.cacheKeys],
      blobs: [...this.#held.blobs],
      snapshots: [...this.#held.snapshots],
    }
    // Not fsynced: a lease protects a live process, and after a power loss no process is live.
    await writeFileAtomic(path, JSON.stringify(record))
    this.#durable = Math.max(this.#durable, count)
  }

  /**
   * Ends the lease: marks everything held as used now (what prune's least-recently-used order
   * reads) and removes the lease file.
   */
  async release(): Promise<void> {
    const path = this.#path
    if (!path) return
    await this.#chain
    this.#path = undefined
    const now = new Date()
    const touch = (p: string) => fsp.utimes(p, now, now).catch(() => undefined)
    const paths = [
      ...[...this.#held.cacheKeys].map((k) => this.#layout.cacheEntry(k)),
      ...[...this.#held.blobs].map((d) => this.#layout.blob(d)),
      ...[...this.#held.snapshots].map((d) => this.#layout.snapshot(d)),
    ]
    for (let i = 0; i < paths.length; i += 64) await Promise.all(paths.slice(i, i + 64).map(touch))
    await fsp.rm(path, { force: true })
    for (const k of KINDS) this.#held[k].clear()
    this.#durable = 0
  }
}

/** The pid in a lease file name `<pid>-<rand>.json`. */
export function leasePid(name: string): number | undefined {
  const m = /^(\d+)-[0-9a-f]+\.json$/.exec(name)
  return m ? Number(m[1]) : undefined
}

/** Every live lease in the store; dead ones (their pid gone) are removed on the way. */
export async function liveLeases(layout: StoreLayout): Promise<LeaseRecord[]> {
  const dir = layout.dir('leases')
  let names: string[]
  try {
    names = await fsp.readdir(dir)
  } catch {
    return []
  }
  const out: LeaseRecord[] = []
  for (const n of names) {
    const pid = leasePid(n)
    if (pid === undefined) continue
    if (pid !== process.pid && !isProcessAlive(pid)) {
      await fsp.rm(join(dir, n), { force: true })
      continue
    }
    try {
      out.push(JSON.parse(await fsp.readFile(join(dir, n), 'utf8')) as LeaseRecord)
    } catch {
      /* released meanwhile */
    }
  }
  return out
}

/** The pid holding `gc.lock`, if it is alive. */
export async function gcHolder(lock: string): Promise<number | undefined> {
  let text: string
  try {
    text = await fsp.readFile(lock, 'utf8')
  } catch {
    return undefined
  }
  const pid = Number(text.trim())
  // An empty file is a lock being written this instant: treat it as held.
  if (text.trim() === '') return -1
  return Number.isSafeInteger(pid) && pid > 0 && (pid === process.pid || isProcessAlive(pid)) ? pid : undefined
}

async function waitForGc(lock: string): Promise<void> {
  for (let i = 0; ; i++) {
    const holder = await gcHolder(lock)
    if (holder === undefined || holder === process.pid) return
    // An empty lock file that stays empty is a prune that died between create and write.
    if (holder === -1 && i > 40) return
    await new Promise((r) => setTimeout(r, GC_POLL_MS))
  }
}
