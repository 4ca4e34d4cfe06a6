import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { claimOwner, isOwnerAlive, isSelf, OWNER_TAG_SOURCE, ownerTag, parseOwnerTag, type Owner } from '../util/owner.js'
import type { StoreLayout } from './layout.js'

/** What one build process holds: prune leaves all of it alone while its writer lives. */
export interface LeaseRecord {
  readonly pid: number
  /** The writer's owner id (util/owner.ts), absent in leases of processes without one. */
  readonly owner?: string
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
 * A build's lease on the store (`leases/<owner tag>-<rand>.json`, alive while its owner is). The store's read paths call
 * {@link hold} before they look: the item is written to the lease file, then the holder waits
 * while a prune runs (`gc.lock`), and only then checks that the item exists. A prune reads the
 * leases after taking `gc.lock`, so either it saw the item, or the holder waited for it to end and
 * finds the item gone (a cache miss, rebuilt), never deleted under its feet. Holds before
 * {@link begin} and after {@link release} cost nothing (commands that hold no build).
 *
 * The file is append-only JSON lines: a header (a whole {@link LeaseRecord} with empty lists), then
 * one line per write with only the items new since the last one, each line one `write` on a file
 * kept open. Rewriting the whole record made every new item cost a temp file and a rename, and
 * grew with the build. A reader ignores a last line without its newline: that is a write still
 * under way, whose holder has not yet checked `gc.lock` and so will wait for the reader's prune.
 */
export class Lease {
  readonly #layout: StoreLayout
  readonly #held: Record<Kind, Set<string>> = { cacheKeys: new Set(), blobs: new Set(), snapshots: new Set() }
  /** How many items of each kind the last completed write held (sets only grow while active). */
  #durable = 0
  /** Items held but not yet in a written line, in the order they were added. */
  #pending: Record<Kind, string[]> = { cacheKeys: [], blobs: [], snapshots: [] }
  #file?: FileHandle
  #path?: string
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
    claimOwner(this.#layout.dir('owners'))
    await fsp.mkdir(this.#layout.dir('leases'), { recursive: true })
    const tag = ownerTag()
    const path = join(this.#layout.dir('leases'), `${tag}-${randomBytes(6).toString('hex')}.json`)
    const started = new Date().toISOString()
    const file = await fsp.open(path, 'a')
    try {
      const owner = parseOwnerTag(tag)?.id
      const header: LeaseRecord = { pid: process.pid, ...(owner ? { owner } : {}), started, cacheKeys: [], blobs: [], snapshots: [] }
      await file.write(`${JSON.stringify(header)}\n`)
    } catch (e) {
      await file.close().catch(() => undefined)
      await fsp.rm(path, { force: true })
      throw e
    }
    // Holds count from here: every later line follows the header.
    this.#file = file
    this.#path = path
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
    for (const k of KINDS) {
      for (const v of items[k] ?? []) {
        if (this.#held[k].has(v)) continue
        this.#held[k].add(v)
        this.#pending[k].push(v)
      }
    }
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
    const file = this.#file
    if (!file) return
    const taken = this.#pending
    const count = this.#count()
    if (KINDS.every((k) => taken[k].length === 0)) return
    this.#pending = { cacheKeys: [], blobs: [], snapshots: [] }
    const line: LeaseItems = Object.fromEntries(KINDS.filter((k) => taken[k].length > 0).map((k) => [k, taken[k]]))
    try {
      // Not fsynced: a lease protects a live process, and after a power loss no process is live.
      await file.write(`${JSON.stringify(line)}\n`)
    } catch (e) {
      // Not on disk: the next hold writes these again (before what was added since).
      for (const k of KINDS) this.#pending[k] = [...taken[k], ...this.#pending[k]]
      throw e
    }
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
    const file = this.#file
    this.#file = undefined
    await file?.close().catch(() => undefined)
    const now = new Date()
    const touch = (p: string) => fsp.utimes(p, now, now).catch(() => undefined)
    const paths = [
      ...[...this.#held.cacheKeys].map((k) => this.#layout.cacheEntry(k)),
      ...[...this.#held.blobs].map((d) => this.#layout.blob(d)),
      ...[...this.#held.snapshots].map((d) => this.#layout.snapshot(d)),
    ]
    for (let i = 0; i < paths.length; i += 64) await Promise.all(paths.slice(i, i + 64).map(touch))
    await fsp.rm(path, { force: true })
    for (const k of KINDS) {
      this.#held[k].clear()
      this.#pending[k] = []
    }
    this.#durable = 0
  }
}

const LEASE_NAME = new RegExp(String.raw`^(${OWNER_TAG_SOURCE})-[0-9a-f]+\.json$`)

/** The writer named by a lease file name `<pid>[-o<id>]-<rand>.json`. */
export function leaseOwner(name: string): Owner | undefined {
  const m = LEASE_NAME.exec(name)
  return m ? parseOwnerTag(m[1]!) : undefined
}

/** The pid in a lease file name. */
export function leasePid(name: string): number | undefined {
  return leaseOwner(name)?.pid
}

/** Every live lease in the store; dead ones (their owner gone) are removed on the way. */
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
    const owner = leaseOwner(n)
    if (owner === undefined) continue
    if (!isOwnerAlive(owner)) {
      await fsp.rm(join(dir, n), { force: true })
      continue
    }
    let text: string
    try {
      text = await fsp.readFile(join(dir, n), 'utf8')
    } catch {
      continue // released meanwhile
    }
    const record = parseLease(text)
    if (record) out.push(record)
  }
  return out
}

/**
 * A lease file's record: the header line merged with every complete line after it. A last line
 * without its newline is a write under way (see {@link Lease}) and is left out; a file without a
 * complete header holds nothing yet. A whole-file JSON record (no newline) is read as it is.
 */
export function parseLease(text: string): LeaseRecord | undefined {
  const lines = text.split('\n')
  if (lines.length === 1) {
    try {
      return JSON.parse(text) as LeaseRecord
    } catch {
      return undefined // empty, or the header being written
    }
  }
  lines.pop() // after the last newline: '' or a line being written
  let record: { -readonly [K in keyof LeaseRecord]: LeaseRecord[K] } | undefined
  for (const line of lines) {
    let parsed: LeaseRecord
    try {
      parsed = JSON.parse(line) as LeaseRecord
    } catch {
      continue
    }
    if (!record) {
      record = { pid: parsed.pid, ...(parsed.owner ? { owner: parsed.owner } : {}), started: parsed.started, cacheKeys: [...(parsed.cacheKeys ?? [])], blobs: [...(parsed.blobs ?? [])], snapshots: [...(parsed.snapshots ?? [])] }
      continue
    }
    for (const k of KINDS) for (const v of parsed[k] ?? []) (record[k] as string[]).push(v)
  }
  return record
}

/**
 * Who holds `gc.lock` (its owner tag as content), if that holder is alive: `'self'`, `'other'`, or
 * `'writing'` for an empty file (a lock being written this instant, treated as held).
 */
export async function gcHolder(lock: string): Promise<'self' | 'other' | 'writing' | undefined> {
  let text: string
  try {
    text = await fsp.readFile(lock, 'utf8')
  } catch {
    return undefined
  }
  if (text.trim() === '') return 'writing'
  const owner = parseOwnerTag(text.trim())
  if (!owner) return undefined
  return isSelf(owner) ? 'self' : isOwnerAlive(owner) ? 'other' : undefined
}

async function waitForGc(lock: string): Promise<void> {
  for (let i = 0; ; i++) {
    const holder = await gcHolder(lock)
    if (holder === undefined || holder === 'self') return
    // An empty lock file that stays empty is a prune that died between create and write.
    if (holder === 'writing' && i > 40) return
    await new Promise((r) => setTimeout(r, GC_POLL_MS))
  }
}
