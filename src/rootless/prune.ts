/**
 * Store GC for a plain user. Snapshot dirs and cache mounts a rootless build made hold files owned
 * by the user's subordinate ids, which only root of a user namespace over that range may remove: a
 * prune that may meet them runs in the same worker as the build's steps.
 */
import { readdir } from 'node:fs/promises'
import { pruneCache, type PruneOptions, type PruneResult } from '../store/gc.js'
import type { Store } from '../store/store.js'
import { isRootless, pruneInNamespace } from './solve-in-namespace.js'

const hasEntries = (dir: string): Promise<boolean> => readdir(dir).then((n) => n.length > 0, () => false)

/** `pruneCache`, or the worker's when a plain user's store holds snapshots or cache mounts. */
export async function pruneStore(store: Store, opts: PruneOptions): Promise<PruneResult> {
  if (isRootless() && ((await hasEntries(store.layout.dir('snapshots'))) || (await hasEntries(store.layout.dir('cacheMounts'))))) {
    return pruneInNamespace(store, opts)
  }
  return pruneCache(store, opts)
}
