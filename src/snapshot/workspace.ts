/**
 * The writable root filesystem a RUN step executes on: an overlay of the unpacked layers with a
 * fresh upper dir (the change set), or, without overlay, a copy of them with a record of the tree
 * before the step (the walk diff's base). The workspace also keeps the step's mounts, so they are
 * undone in reverse order when the step ends, and if the process dies mid-step.
 */
import type { Stats } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { registerCleanup, removeSync, sweepDeadWorkDirs, unmountSync } from '../runtime/cleanup.js'
import { copyRootfs, treeState } from './copy-fallback.js'
import { mountOverlay, unmount } from './overlay.js'
import { ownerTag } from '../util/owner.js'
import { spreadDir, treeRoot } from '../host/tree-root.js'

export interface RootfsWorkspace {
  /** The step's private directory (bundle, mount sources); removed when the step ends. */
  readonly dir: string
  /** The container's root filesystem. */
  readonly rootfs: string
  /** The overlay's upper dir, holding exactly what the step changed (overlay only). */
  readonly upper?: string
  /** The copied rootfs as it was before the step (copy fallback only). */
  readonly before?: Map<string, Stats>
  /** Records a mount point inside `dir`: unmounted, newest first, by `unmountAll` and on exit. */
  track(mountPoint: string): void
  /** Unmounts everything tracked so far (the rootfs included), newest first. */
  unmountAll(): Promise<void>
}

/**
 * Calls `fn` with a fresh workspace in `workRoot` over `lowerDirs` (unpacked layers, bottom first)
 * and removes it afterwards, whether `fn` succeeds or throws.
 */
export async function withRootfsWorkspace<T>(
  workRoot: string,
  lowerDirs: readonly string[],
  useOverlay: boolean,
  fn: (ws: RootfsWorkspace) => Promise<T>,
): Promise<T> {
  await treeRoot(workRoot)
  sweepDeadWorkDirs(workRoot)
  const work = await spreadDir(() => mkdtemp(join(workRoot, `run-${ownerTag()}-`)))
  const rootfs = join(work, 'r')
  const upper = join(work, 'u')
  const mounted: string[] = [] // mount points inside `work`, in mount order
  const releaseWork = registerCleanup(`run ${work}`, () => {
    for (const m of [...mounted].reverse()) unmountSync(m)
    removeSync(work)
  })
  const unmountAll = async () => {
    for (const m of mounted.splice(0).reverse()) await unmount(m)
  }
  try {
    await mkdir(rootfs)
    let before: Map<string, Stats> | undefined
    if (useOverlay) {
      await mkdir(upper)
      await mkdir(join(work, 'w'))
      const lower = [...lowerDirs].reverse()
      if (lower.length === 0) {
        await mkdir(join(work, 'e'))
        lower.push(join(work, 'e'))
      }
      await mountOverlay({ lower, upper, work: join(work, 'w'), target: rootfs, scratch: work })
      mounted.push(rootfs)
    } else {
      await copyRootfs(lowerDirs, rootfs)
      before = await treeState(rootfs)
    }
    return await fn({
      dir: work,
      rootfs,
      ...(useOverlay ? { upper } : {}),
      ...(before ? { before } : {}),
      track: (mountPoint) => void mounted.push(mountPoint),
      unmountAll,
    })
  } finally {
    await unmountAll().catch(() => undefined)
    await rm(work, { recursive: true, force: true }).catch(() => undefined)
    releaseWork()
  }
}
