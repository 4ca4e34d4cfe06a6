/**
 * Store GC and usage for a plain user. Snapshot dirs and cache mounts a rootless build made hold files owned
 * by the user's subordinate ids, which only root of a user namespace over that range may remove: a
 * prune that may meet them runs in the same worker as the build's steps.
 */
import { readdir } from 'node:fs/promises'
import { cacheUsage, pruneCache, type PruneOptions, type PruneResult, type UsageRecord } from '../store/gc.js'
import type { Store } from '../store/store.js'
import { isRootless, pruneInNamespace, usageInNamespace } from './solve-in-namespace.js'

const hasEntries = (dir: string): Promise<boolean> => readdir(dir).then((n) => n.length > 0, () => false)

/** Whether `store` belongs to a plain user and holds what a rootless build's worker made. */
async function holdsSubordinateFiles(store: Store): Promise<boolean> {
  return isRootless() && ((await hasEntries(store.layout.dir('snapshots'))) || (await hasEntries(store.layout.dir('cacheMounts'))))
}

/** `pruneCache`, or the worker's when a plain user's store holds snapshots or cache mounts. */
export async function pruneStore(store: Store, opts: PruneOptions): Promise<PruneResult> {
  return (await holdsSubordinateFiles(store)) ? pruneInNamespace(store, opts) : pruneCache(store, opts)
}

/** `cacheUsage`, or the worker's for such a store (a dir of a subordinate id with mode 0700 is unreadable to the user). */
export async function storeUsage(store: Store): Promise<UsageRecord[]> {
  return (await holdsSubordinateFiles(store)) ? usageInNamespace(store) : cacheUsage(store)
}
