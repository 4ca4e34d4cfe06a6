import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'

/**
 * Maps a vertex cache key to the JSON result that vertex produced (e.g. a layer's digests).
 * Entries are written to a temp file and renamed, so readers see either nothing or a whole entry.
 * A hit is only trusted by callers after they check that the blobs it names are in the store.
 */
export class CacheIndex {
  readonly dir: string

  constructor(root: string) {
    this.dir = join(root, 'cache')
  }

  private path(key: string): string {
    return join(this.dir, `${key.replace(/^sha256:/, '')}.json`)
  }

  async lookup<T>(key: string): Promise<T | undefined> {
    try {
      return JSON.parse(await fsp.readFile(this.path(key), 'utf8')) as T
    } catch {
      return undefined
    }
  }

  async record(key: string, result: unknown): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true })
    const tmp = `${this.path(key)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
    await fsp.writeFile(tmp, JSON.stringify(result))
    await fsp.rename(tmp, this.path(key))
  }
}
