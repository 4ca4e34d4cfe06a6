import { promises as fsp } from 'node:fs'
import { writeFileAtomic } from './atomic-write.js'
import type { StoreLayout } from './layout.js'
import type { Lease } from './lease.js'

/**
 * Maps a vertex cache key to the JSON result that vertex produced (e.g. a layer's digests).
 * Entries are written atomically (fsynced before their rename), so readers, even after a crash, see
 * either nothing or a whole entry. A hit is only trusted by callers after they check that the blobs
 * it names are in the store.
 */
export class CacheIndex {
  readonly dir: string
  readonly #layout: StoreLayout
  readonly #lease: Lease | undefined

  constructor(layout: StoreLayout, lease?: Lease) {
    this.#layout = layout
    this.#lease = lease
    this.dir = layout.dir('cache')
  }

  /** Holds `key` in the build's lease first, so a concurrent prune cannot remove the entry after this read. */
  async lookup<T>(key: string): Promise<T | undefined> {
    await this.#lease?.hold({ cacheKeys: [key] })
    try {
      return JSON.parse(await fsp.readFile(this.#layout.cacheEntry(key), 'utf8')) as T
    } catch {
      return undefined
    }
  }

  async record(key: string, result: unknown): Promise<void> {
    await this.#lease?.hold({ cacheKeys: [key] })
    await fsp.mkdir(this.dir, { recursive: true })
    await writeFileAtomic(this.#layout.cacheEntry(key), JSON.stringify(result), { fsync: true })
  }
}
