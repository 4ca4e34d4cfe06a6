import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { writeFileAtomic } from './atomic-write.js'
import type { StoreLayout } from './layout.js'

/** One local image name, as `docker images` lists it. */
export interface ImageNameRecord {
  /** The normalised name with its tag: `docker.io/library/app:1`. */
  readonly name: string
  /** What the user sees: `app` (docker's familiar form, without the tag). */
  readonly repository: string
  readonly tag: string
  /** Manifest digest. */
  readonly digest: string
  /** When the name was recorded (ISO 8601). */
  readonly created: string
  /** Manifest + config + compressed layers, in bytes. */
  readonly size: number
}

/**
 * Local image names → manifest digests: what builds tagged (`-t`), `imagesmith tag` copied,
 * `imagesmith rmi` dropped. One small JSON file per name, written atomically, so concurrent
 * builds tagging different names never rewrite a shared file. Names arrive normalised (the store
 * parses no references); the blobs stay until a prune finds nothing naming them.
 */
export class ImageNames {
  readonly dir: string
  readonly #layout: StoreLayout

  constructor(layout: StoreLayout) {
    this.#layout = layout
    this.dir = layout.dir('images')
  }

  #path(name: string): string {
    return this.#layout.imageName(createHash('sha256').update(name).digest('hex'))
  }

  async get(name: string): Promise<ImageNameRecord | undefined> {
    try {
      return JSON.parse(await fsp.readFile(this.#path(name), 'utf8')) as ImageNameRecord
    } catch {
      return undefined
    }
  }

  async set(record: ImageNameRecord): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true })
    await writeFileAtomic(this.#path(record.name), JSON.stringify(record), { fsync: true })
  }

  /** Removes a name; false when there was none. */
  async remove(name: string): Promise<boolean> {
    try {
      await fsp.unlink(this.#path(name))
      return true
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw e
    }
  }

  /** Every recorded name, newest first (as `docker images`). */
  async list(): Promise<ImageNameRecord[]> {
    let names: string[]
    try {
      names = await fsp.readdir(this.dir)
    } catch {
      return []
    }
    const out: ImageNameRecord[] = []
    for (const n of names) {
      if (!n.endsWith('.json') || n.includes('.tmp-')) continue
      try {
        out.push(JSON.parse(await fsp.readFile(`${this.dir}/${n}`, 'utf8')) as ImageNameRecord)
      } catch {
        /* removed meanwhile */
      }
    }
    return out.sort((a, b) => b.created.localeCompare(a.created) || a.name.localeCompare(b.name))
  }
}
