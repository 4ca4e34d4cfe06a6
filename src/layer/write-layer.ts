/**
 * Layer entries → layer blob in the store, in one streaming pass:
 * tar (sync reads, 1 MiB chunks) → sha256 = diffID → parallel gzip → sha256 = digest → temp file → rename.
 * Memory stays bounded by the chunk size × members in flight, whatever the layer size.
 */
import { createHash, type Hash } from 'node:crypto'
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { abortError, ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { MediaType, type Digest } from '../oci/media-types.js'
import type { LayerRef } from '../oci/types.js'
import type { BlobStore } from '../store/blob-store.js'
import type { Compression, LayerEntry, LayerWriteOptions } from './entry.js'
import { gzipMembers } from './gzip-parallel.js'
import { tarChunks, tarChunksAsync } from './tar-writer.js'

const DEFAULTS = Object.freeze({ compression: 'gzip' as Compression, level: 6 })

/**
 * Writes `entries` (in the order given; see {@link sortEntries}) as one layer blob into `blobs`
 * and returns its digest, diffID, size and media type. On error or abort the temp file is removed
 * and nothing is committed.
 */
export async function writeLayer(
  entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>,
  blobs: BlobStore,
  opts: LayerWriteOptions = {},
): Promise<LayerRef> {
  const compression = opts.compression ?? DEFAULTS.compression
  const level = opts.level ?? DEFAULTS.level
  const signal = opts.signal
  if (compression !== 'gzip' && compression !== 'none') {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `unknown layer compression ${JSON.stringify(compression)}`, { compression })
  }
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `gzip level must be an integer 1–9, got ${level}`, { level })
  }
  throwIfAborted(signal)

  const writer = await blobs.createWriter()
  const stream = writer.stream
  let streamError: unknown
  stream.on('error', (e) => { streamError ??= e })
  try {
    const diffHash = createHash('sha256')
    const tar = isIterable(entries) ? tarChunks(entries) : tarChunksAsync(entries)
    const tapped = isIterable(tar) ? tapSync(tar, diffHash, signal) : tapAsync(tar, diffHash, signal)
    const out = compression === 'gzip' ? gzipMembers(tapped, { level, signal }) : tapped
    const digestHash = compression === 'gzip' ? createHash('sha256') : undefined

    let size = 0
    for await (const chunk of out) {
      if (streamError) throw streamError
      digestHash?.update(chunk)
      size += chunk.length
      if (!stream.write(chunk)) await drain(stream, signal)
    }
    throwIfAborted(signal)
    stream.end()
    await finished(stream)
    if (streamError) throw streamError

    const diffId = `sha256:${diffHash.digest('hex')}` as Digest
    const digest = digestHash ? (`sha256:${digestHash.digest('hex')}` as Digest) : diffId
    await writer.commit(digest)
    return Object.freeze({
      digest,
      diffId,
      size,
      mediaType: compression === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayer,
    })
  } catch (e) {
    await writer.abort()
    if (signal?.aborted && !(e instanceof ImagesmithError && e.code === ErrorCodes.ABORTED)) throw abortError(signal)
    throw e
  }
}

/**
 * Orders entries the way a deterministic layer wants them: by path compared byte-wise (UTF-8)
 * component by component, so a parent comes before its children and 'a/b' right after 'a' (before
 * 'a-b'). This is the order of GNU `tar --sort=name`. The sort is stable; duplicates are kept.
 * A hard link must sort after its target: producers pick the first path of a link group as the file.
 */
export function sortEntries<E extends LayerEntry>(entries: Iterable<E>): E[] {
  // '/' → NUL makes plain byte order equal component order; latin1 over the UTF-8 bytes makes JS
  // string comparison (UTF-16 code units) equal byte order.
  const keyed = Array.from(entries, (e) => ({ e, k: Buffer.from(e.path.replaceAll('/', '\0'), 'utf8').toString('latin1') }))
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
  return keyed.map((x) => x.e)
}

function isIterable<T>(x: Iterable<T> | AsyncIterable<T>): x is Iterable<T> {
  return typeof (x as Iterable<T>)[Symbol.iterator] === 'function'
}

function* tapSync(src: Iterable<Buffer>, hash: Hash, signal: AbortSignal | undefined): Generator<Buffer> {
  for (const c of src) {
    throwIfAborted(signal)
    hash.update(c)
    yield c
  }
}

async function* tapAsync(src: AsyncIterable<Buffer>, hash: Hash, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  for await (const c of src) {
    throwIfAborted(signal)
    hash.update(c)
    yield c
  }
}

async function drain(stream: Writable, signal: AbortSignal | undefined): Promise<void> {
  try {
    await once(stream, 'drain', signal ? { signal } : {})
  } catch (e) {
    if (signal?.aborted) throw abortError(signal)
    throw e
  }
}
