import { createHash } from 'node:crypto'
import { createReadStream, existsSync, promises as fsp, type WriteStream } from 'node:fs'
import { PassThrough, Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createRequire } from 'node:module'
import type ssriModule from 'ssri'
import { ErrorCodes, ImagesmithError, isImagesmithError } from '../errors.js'
import { isDigest, type Digest } from '../oci/media-types.js'
import { createAtomicWriter, sweepDeadTemps, writeFileAtomic } from './atomic-write.js'
import { StoreLayout } from './layout.js'
import type { Lease } from './lease.js'
import { RemoteBlobs, remoteCorrupt } from './remote-blobs.js'


/**
 * ssri is loaded on the first checked read, not at module load: its import (with minipass) was
 * ~10 ms of every CLI start, and a no-op build reads no blob.
 */
let ssriLoaded: typeof ssriModule | undefined
const ssri = (): typeof ssriModule => (ssriLoaded ??= createRequire(import.meta.url)('ssri') as typeof ssriModule)

/**
 * Blobs this process wrote and committed in the last minute, by path → when: their writer hashed
 * the very bytes it wrote to name them (BlobWriter.commit's contract), so reading one back right
 * away (a layer exported just after it was made) is not hashed again: 100 MB of sha256 per 10k-file
 * layer. Older ones, and every blob another process wrote, are verified as they are read (a
 * long-lived process does not trust its own writes from long ago to have stayed intact on disk).
 */
const writtenHere = new Map<string, number>()
const TRUST_OWN_WRITE_MS = 60_000

function freshlyWritten(path: string): boolean {
  const at = writtenHere.get(path)
  if (at === undefined) return false
  if (Date.now() - at < TRUST_OWN_WRITE_MS) return true
  writtenHere.delete(path)
  return false
}

/** A blob being written: bytes go to a private temp file that becomes visible only on commit. */
export interface BlobWriter {
  readonly stream: WriteStream
  /** Renames the temp file to `blobs/sha256/<hex>`. The caller vouches for the digest it computed while writing. */
  commit(digest: Digest): Promise<void>
  /** Removes the temp file; safe to call after a failed or aborted write. */
  abort(): Promise<void>
}

/**
 * Content-addressed blob store: `<root>/blobs/sha256/<hex>`.
 *
 * Writers stream into `<root>/tmp/` (see atomic-write.ts), fsync and rename into place, so a killed
 * process or a power loss leaves at most a stray temp file, never a blob whose bytes differ from
 * its name (a cache hit trusts a blob that exists). Concurrent writers of the same content both
 * rename identical bytes onto one name, which is atomic on POSIX, so every process agrees.
 * Reads are checked with ssri so a corrupted blob fails loudly instead of reaching an image.
 */
export class BlobStore {
  readonly root: string
  readonly #layout: StoreLayout
  /** The build's lease (see lease.ts): every blob looked up or written is held before it is touched. */
  readonly #lease: Lease | undefined
  /** Blobs known by where they can be fetched from, not held (a lazily imported cache's layers). */
  readonly remote: RemoteBlobs
  /** One fetch per digest at a time in this process. */
  readonly #fetching = new Map<Digest, Promise<void>>()
  /** Fetches that found other bytes: a reader coming later (its record is gone) gets the same error. */
  readonly #corrupt = new Map<Digest, ImagesmithError>()

  constructor(root: string, lease?: Lease) {
    this.root = root
    this.#layout = new StoreLayout(root)
    this.#lease = lease
    this.remote = new RemoteBlobs(this.#layout)
  }

  blobPath(digest: Digest): string {
    assertDigest(digest)
    return this.#layout.blob(digest)
  }

  get tmpDir(): string {
    return this.#layout.dir('tmp')
  }

  #initialised?: Promise<void>

  /** Creates the layout once per instance and clears temp files left by processes that died mid-write. */
  init(): Promise<void> {
    this.#initialised ??= (async () => {
      await fsp.mkdir(this.#layout.dir('blobs'), { recursive: true })
      await fsp.mkdir(this.tmpDir, { recursive: true })
      await this.sweepTemp()
    })().catch((e) => {
      this.#initialised = undefined
      throw e
    })
    return this.#initialised
  }

  /** Removes temp files and dirs in `tmp/` whose writer process (the pid in their name) is gone. */
  sweepTemp(): Promise<number> {
    return sweepDeadTemps(this.tmpDir, { stepDirs: true })
  }

  async has(digest: Digest): Promise<boolean> {
    await this.#lease?.hold({ blobs: [digest] })
    try {
      await fsp.access(this.blobPath(digest))
      return true
    } catch {
      return false
    }
  }

  /**
   * Whether the store holds `digest` or knows where to fetch it (a remote record). Only for what may
   * stay remote (an image's layers); anything that reads bytes calls {@link ensure} first.
   */
  async known(digest: Digest): Promise<boolean> {
    return (await this.has(digest)) || (await this.remote.get(digest)) !== undefined
  }

  /**
   * Makes sure the store holds `digest`: a blob known only remotely is fetched through its source's
   * fetcher, verified while it streams, and stored (then its record is dropped). BLOB_NOT_FOUND when
   * neither the blob nor a fetchable record is there; BLOB_CORRUPT naming the digest and the cache
   * when the fetched bytes do not match (nothing stored, the record dropped).
   */
  async ensure(digest: Digest, signal?: AbortSignal): Promise<void> {
    if (await this.has(digest)) return
    let p = this.#fetching.get(digest)
    if (!p) {
      p = this.#fetchRemote(digest, signal)
      this.#fetching.set(digest, p)
      const done = () => void this.#fetching.delete(digest)
      p.then(done, done)
    }
    await p
  }

  async #fetchRemote(digest: Digest, signal?: AbortSignal): Promise<void> {
    const rec = await this.remote.get(digest)
    if (!rec) {
      // Another process sharing the store may have fetched it, and dropped the record, since
      // this one looked: the blob is then here.
      if (!this.#corrupt.has(digest) && (await this.has(digest))) return
      throw this.#corrupt.get(digest) ?? notFound(digest, undefined)
    }
    const fetcher = this.remote.fetcherFor(rec.source.type)
    if (!fetcher) {
      throw new ImagesmithError(ErrorCodes.BLOB_NOT_FOUND, `blob ${digest} is not in the store yet (it is in cache ${rec.source.ref}), and no fetcher for ${rec.source.type} caches is installed here (a build, or imagesmith save, installs them)`, { digest, source: rec.source.ref })
    }
    try {
      await fetcher(rec, signal)
    } catch (e) {
      if (isImagesmithError(e) && (e.code === ErrorCodes.BLOB_CORRUPT || e.code === ErrorCodes.DIGEST_MISMATCH)) {
        // The source holds other bytes under this digest: it will not answer for it again.
        const err = remoteCorrupt(rec, e)
        this.#corrupt.set(digest, err)
        await this.remote.remove(digest)
        throw err
      }
      throw e
    }
    if (!(await this.has(digest))) throw notFound(digest, undefined)
    await this.remote.remove(digest)
  }

  async size(digest: Digest): Promise<number> {
    try {
      return (await fsp.stat(this.blobPath(digest))).size
    } catch (e) {
      throw notFound(digest, e)
    }
  }

  async createWriter(): Promise<BlobWriter> {
    await this.init()
    const w = createAtomicWriter(this.tmpDir, 'blob', { fsync: true })
    return {
      stream: w.stream,
      commit: async (digest: Digest) => {
        await this.#lease?.hold({ blobs: [digest] })
        await w.commit(this.blobPath(digest))
        writtenHere.set(this.blobPath(digest), Date.now())
      },
      abort: () => w.abort(),
    }
  }

  /** Streams `source` into the store, hashing as it goes. If `expected` is given, a mismatch is refused. */
  async putStream(source: Readable, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    const writer = await this.createWriter()
    const hash = createHash('sha256')
    let size = 0
    try {
      // Hash inside the pipeline: a bare 'data' listener would start some sources (minipass, as node-tar
      // entries are) flowing before the file stream is attached, and those chunks would never be written.
      const hasher = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk)
          size += chunk.length
          cb(null, chunk)
        },
      })
      await pipeline(source, hasher, writer.stream)
      const digest = `sha256:${hash.digest('hex')}` as Digest
      if (expected && expected !== digest) {
        throw new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `blob content does not match ${expected} (got ${digest})`, { expected, actual: digest })
      }
      await writer.commit(digest)
      return { digest, size }
    } catch (e) {
      await writer.abort()
      throw e
    }
  }

  async putBytes(data: Uint8Array | string): Promise<{ digest: Digest; size: number }> {
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    const digest = `sha256:${createHash('sha256').update(buf).digest('hex')}` as Digest
    if (!(await this.has(digest))) {
      await this.init()
      await writeFileAtomic(this.blobPath(digest), buf, { fsync: true, tmpDir: this.tmpDir })
    }
    return { digest, size: buf.length }
  }

  /**
   * A verifying read stream: it errors with BLOB_CORRUPT if the bytes do not hash to `digest`. A
   * blob known only remotely is fetched into the store first ({@link ensure}).
   */
  open(digest: Digest, signal?: AbortSignal): Readable {
    const path = this.blobPath(digest)
    if (existsSync(path)) return this.#openHeld(digest, path)
    const out = new PassThrough({ highWaterMark: 1 << 20 })
    this.ensure(digest, signal).then(
      () => {
        if (out.destroyed) return
        const held = this.#openHeld(digest, path)
        held.on('error', (e) => out.destroy(e))
        out.on('close', () => held.destroy())
        held.pipe(out)
      },
      (e) => out.destroy(e as Error),
    )
    return out
  }

  #openHeld(digest: Digest, path: string): Readable {
    this.#lease?.add({ blobs: [digest] })
    const file = createReadStream(path, { highWaterMark: 1 << 20 })
    if (freshlyWritten(path)) {
      file.on('error', (e) => file.destroy(notFound(digest, e)))
      return file
    }
    const integrity = ssri().fromHex(digest.slice(7), 'sha256')
    const checked = ssri().integrityStream({ integrity })
    file.on('error', (e) => checked.destroy(notFound(digest, e)))
    checked.on('error', () => file.destroy())
    // ssri reports EINTEGRITY; translate it so callers see the store's error type.
    const out = file.pipe(checked)
    const origEmit = out.emit.bind(out)
    out.emit = ((event: string, ...args: unknown[]) => {
      if (event === 'error' && (args[0] as { code?: string })?.code === 'EINTEGRITY') {
        args[0] = new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `blob ${digest} is corrupt in the store at ${path}`, { digest, path })
      }
      return origEmit(event, ...args)
    }) as typeof out.emit
    return out
  }

  async readBytes(digest: Digest): Promise<Buffer> {
    assertDigest(digest)
    await this.#lease?.hold({ blobs: [digest] })
    let buf: Buffer
    try {
      buf = await fsp.readFile(this.blobPath(digest))
    } catch (e) {
      throw notFound(digest, e)
    }
    const actual = `sha256:${createHash('sha256').update(buf).digest('hex')}`
    if (actual !== digest) {
      throw new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `blob ${digest} is corrupt in the store`, { digest, actual })
    }
    return buf
  }

  async readJson<T>(digest: Digest): Promise<T> {
    return JSON.parse((await this.readBytes(digest)).toString('utf8')) as T
  }
}


function assertDigest(d: string): asserts d is Digest {
  if (!isDigest(d)) throw new ImagesmithError(ErrorCodes.DIGEST_INVALID, `not a sha256 digest: ${d}`, { digest: d })
}

function notFound(digest: Digest, cause: unknown): ImagesmithError {
  return new ImagesmithError(ErrorCodes.BLOB_NOT_FOUND, `blob ${digest} is not in the store`, { digest }, { cause })
}
