import { join } from 'node:path'
import { BlobStore } from './blob-store.js'
import { CacheIndex } from './cache-index.js'

/**
 * One on-disk store: blobs, the cache index, unpacked layer snapshots (for RUN) and RUN cache mounts.
 * All paths live under one root so that temp files and renames stay on one filesystem.
 */
export class Store {
  readonly root: string
  readonly blobs: BlobStore
  readonly cache: CacheIndex

  constructor(root: string) {
    this.root = root
    this.blobs = new BlobStore(root)
    this.cache = new CacheIndex(root)
  }

  /** Where layer `diffId` is unpacked once and reused as an overlay lower dir. */
  snapshotDir(diffId: string): string {
    return join(this.root, 'snapshots', diffId.replace(/^sha256:/, ''))
  }

  /** Persistent dirs for `RUN --mount=type=cache`, keyed by the mount id. */
  cacheMountDir(id: string): string {
    return join(this.root, 'cache-mounts', encodeURIComponent(id))
  }

  /** Scratch space for one running step (bundles, upper dirs); removed when the step ends. */
  workDir(): string {
    return join(this.root, 'work')
  }
}
