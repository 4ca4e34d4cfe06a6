import { resolve } from 'node:path'
import { BlobStore } from './blob-store.js'
import { CacheIndex } from './cache-index.js'
import { ImageNames } from './image-names.js'
import { Lease } from './lease.js'
import { claimOwner, knowOwners } from '../util/owner.js'
import { sweepDeadTemps } from './atomic-write.js'
import { StoreLayout, SWEPT_DIRS } from './layout.js'

/**
 * State a module above the store keeps per store (in-flight unpacks, probes of the store's
 * filesystem, the runtime tried in its work dir). The module owns the slot; the store only holds
 * the value, so two stores in one process never share it and the store imports nothing upward.
 */
export interface StoreSlot<T> {
  readonly name: string
  readonly create: () => T
}

export function storeSlot<T>(name: string, create: () => T): StoreSlot<T> {
  return Object.freeze({ name, create })
}

/**
 * Slot values of the stores opened with {@link Store.shared}, by root: the builds of one process on
 * one store dir find the runtime, probe overlay and unpack a layer once between them, not once each
 * (twenty builds in one process paid twenty runtime trials and overlay probes). One small map per
 * store dir the process builds into.
 */
const SHARED_SLOTS = new Map<string, Map<StoreSlot<unknown>, unknown>>()

/**
 * One on-disk store: blobs, the cache index, unpacked layer snapshots (for RUN) and RUN cache mounts.
 * Its folders are named by {@link StoreLayout}; everything written in them goes through
 * `atomic-write.ts`.
 */
export class Store {
  readonly root: string
  readonly layout: StoreLayout
  readonly blobs: BlobStore
  readonly cache: CacheIndex
  /** Local image names (build tags, `imagesmith tag`) → manifest digests. */
  readonly images: ImageNames
  /**
   * What this process holds while it builds (see lease.ts). Inactive until `lease.begin()`; blob,
   * cache and snapshot lookups then hold what they touch, so a prune in another process skips it.
   */
  readonly lease: Lease
  readonly #slots: Map<StoreSlot<unknown>, unknown>
  readonly #once = new Map<string, Promise<unknown>>()

  /**
   * A store whose slots ({@link local}) are those of every other store opened this way on the same
   * dir in this process; its lease is its own. What a build opens: state about the store's files
   * and host (in-flight unpacks and base lookups, the runtime tried in its work dir, overlay
   * support) is the same for every build on it.
   */
  static shared(root: string): Store {
    const key = resolve(root)
    let slots = SHARED_SLOTS.get(key)
    if (!slots) SHARED_SLOTS.set(key, (slots = new Map()))
    return new Store(root, slots)
  }

  constructor(root: string, slots: Map<StoreSlot<unknown>, unknown> = new Map()) {
    this.#slots = slots
    this.root = root
    this.layout = new StoreLayout(root)
    knowOwners(this.layout.dir('owners'))
    this.lease = new Lease(this.layout)
    this.blobs = new BlobStore(root, this.lease)
    this.cache = new CacheIndex(this.layout, this.lease)
    this.images = new ImageNames(this.layout)
  }

  /**
   * Creates the blob folders and, once per store, removes what dead writers left in every swept
   * folder (temp files and dirs carrying a pid that is gone). Every build calls it first.
   */
  async init(): Promise<void> {
    // Before anything is written: temp names and leases carry the owner id this claims.
    claimOwner(this.layout.dir('owners'))
    await this.blobs.init()
    await Promise.all(SWEPT_DIRS.map((d) => this.sweepOnce(this.layout.dir(d))))
  }

  /** This store's value for `slot`, created on first use. */
  local<T>(slot: StoreSlot<T>): T {
    if (!this.#slots.has(slot)) this.#slots.set(slot, slot.create())
    return this.#slots.get(slot) as T
  }

  /**
   * Runs `fn` once per store for `key` (sweeps, probes) and shares its promise; a failed run is
   * forgotten so the next call tries again.
   */
  once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let p = this.#once.get(key) as Promise<T> | undefined
    if (!p) {
      p = fn()
      this.#once.set(key, p)
      p.catch(() => this.#once.delete(key))
    }
    return p
  }

  /** Removes temps of dead writers from `dir` (a store folder), once per store. */
  sweepOnce(dir: string): Promise<number> {
    return this.once(`sweep:${dir}`, () => sweepDeadTemps(dir))
  }

  /** Where layer `diffId` is unpacked once and reused as an overlay lower dir. */
  snapshotDir(diffId: string): string {
    this.lease.add({ snapshots: [diffId] })
    return this.layout.snapshot(diffId)
  }

  /** Persistent dirs for `RUN --mount=type=cache`, keyed by the mount id. */
  cacheMountDir(id: string): string {
    return this.layout.cacheMount(id)
  }

  /** Scratch space for one running step (bundles, upper dirs); removed when the step ends. */
  workDir(): string {
    return this.layout.dir('work')
  }
}
