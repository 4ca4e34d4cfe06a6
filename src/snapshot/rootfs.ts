/**
 * A read-only, merged view of an image's layers, for steps that read another stage's files
 * (`COPY --from`, `RUN --mount=type=bind,from=…`). Layers are unpacked once into the store and
 * stacked with overlayfs; the mount lives only for the duration of the callback.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { throwIfAborted } from '../errors.js'
import type { LayerRef } from '../oci/types.js'
import type { Store } from '../store/store.js'
import { registerCleanup, removeSync, unmountSync } from '../runtime/cleanup.js'
import { mountOverlay, unmount } from './overlay.js'
import { ensureSnapshots } from './unpack.js'
import { ownerTag } from '../util/owner.js'

/**
 * Calls `fn` with a directory holding the merged filesystem of `layers` (bottom first, as in the
 * image config) and removes the view afterwards, whether `fn` succeeds or throws.
 *
 * - zero layers: an empty directory;
 * - one layer: its snapshot dir itself (no mount);
 * - otherwise: a read-only overlay of the snapshot dirs.
 *
 * `fn` must not write into `dir`: in the one-layer case it is the shared snapshot. Whiteouts of the
 * bottom layer hide nothing, but overlay shows them (as 0/0 char devices) in directories no lower
 * layer shares, so a reader should skip 0/0 char devices; well-formed images have none there.
 */
export async function withRootfs<T>(
  store: Store,
  layers: readonly LayerRef[],
  opts: { signal?: AbortSignal },
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  throwIfAborted(opts.signal)
  const snapshots = await ensureSnapshots(store, layers, opts)
  throwIfAborted(opts.signal)
  if (snapshots.length === 1) return fn(snapshots[0]!.dir)

  const scratch = store.workDir()
  await mkdir(scratch, { recursive: true })
  const dir = await mkdtemp(join(scratch, `ro-${ownerTag()}-`))
  const release = registerCleanup(`rootfs ${dir}`, () => {
    unmountSync(dir)
    removeSync(dir)
  })
  try {
    if (snapshots.length === 0) return await fn(dir)
    await mountOverlay({ lower: snapshots.map((s) => s.dir).reverse(), target: dir, scratch })
    try {
      return await fn(dir)
    } finally {
      await unmount(dir)
    }
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined)
    release()
  }
}
