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
import { MemberSplitter, type RawMember } from './member-cut.js'
import { compressMembers, PreviousMembers, type MemberOut } from './members.js'
import type { MemberRecord } from '../store/member-index.js'
import { writeMemberIndex } from '../store/member-index.js'
import { writeLayerSummary, type SummaryEntry } from '../store/layer-summary.js'
import { isAscii, nameBytes } from '../util/names.js'
import { TarSerializer, type FileWhere } from './tar-writer.js'

const DEFAULTS = Object.freeze({ compression: 'gzip' as Compression, level: 6 })

/** Runs `fn` once a slot is free (the build's CPU pool) and holds the slot until it settles. */
export type SlotRunner = <T>(fn: () => Promise<T>) => Promise<T>

export interface WriteLayerOptions extends LayerWriteOptions {
  /**
   * The whole write (tar, hashing, gzip) runs inside one slot of it: the gzip members already use
   * every core, so two big layers compressing at once would only fight over them.
   */
  readonly cpuSlot?: SlotRunner
}

/**
 * Writes `entries` (in the order given; see {@link sortEntries}) as one layer blob into `blobs`
 * and returns its digest, diffID, size and media type. On error or abort the temp file is removed
 * and nothing is committed.
 */
export async function writeLayer(
  entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>,
  blobs: BlobStore,
  opts: WriteLayerOptions = {},
): Promise<LayerRef> {
  return opts.cpuSlot ? opts.cpuSlot(() => writeLayerNow(entries, blobs, opts)) : writeLayerNow(entries, blobs, opts)
}

async function writeLayerNow(
  entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>,
  blobs: BlobStore,
  opts: LayerWriteOptions,
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
  let previous: PreviousMembers | undefined
  let streamError: unknown
  stream.on('error', (e) => { streamError ??= e })
  try {
    // Wait for the temp file to exist: aborting a stream that is still opening would let the
    // open land after the removal and leave the file behind.
    if ((stream as { pending?: boolean }).pending) await once(stream, 'ready')
    const diffHash = createHash('sha256')
    const gzipped = compression === 'gzip'
    // gzip: the tar is cut into members where the entries say (member-cut.ts), each compressed or
    // copied from the previous blob; the splitter copies the chunks, so they are reused at once.
    const splitter = gzipped ? new MemberSplitter(8, opts.members?.cut) : undefined
    const tar = new TarSerializer({
      ...(opts.tee ? { tee: opts.tee } : {}), ...(opts.expect ? { expect: opts.expect } : {}), ...(opts.proven ? { proven: opts.proven } : {}),
      ...(splitter ? { onData: (start: number, size: number, sha?: string, where?: FileWhere) => splitter.noteData(start, size, sha, where) } : {}),
    })
    // With a splitter the tar comes out as whole uncompressed members, else as chunks.
    type Pieces<T> = Iterable<T> | AsyncIterable<T>
    // What each entry is, kept beside the layer (store/layer-summary.ts): budgets weigh layers by it.
    const summary: SummaryEntry[] = []
    const chunks = isIterable(entries) ? tarSync(tar, notedSync(entries, summary), diffHash, signal, splitter) : tarAsync(tar, notedAsync(entries, summary), diffHash, signal, splitter)
    const prevRef = gzipped ? opts.members?.previous : undefined
    previous = prevRef && opts.members ? await PreviousMembers.open(opts.members.dir, prevRef.digest, prevRef.path, level) : undefined
    const records: MemberRecord[] = []
    const reused = { n: 0 }
    const out = gzipped
      ? recordMembers(compressMembers(chunks as Pieces<RawMember>, { level, ...(signal ? { signal } : {}), ...(previous ? { previous } : {}), release: (m) => splitter!.release(m) }), records, reused)
      : (chunks as Pieces<Buffer>)
    const digestHash = gzipped ? createHash('sha256') : undefined
    // Uncompressed chunks go to the file as they are: reuse them once written.
    const written = gzipped ? undefined : (c: Buffer) => (err?: Error | null) => { if (!err) tar.release(c) }

    let size = 0
    for await (const chunk of out) {
      if (streamError) throw streamError
      digestHash?.update(chunk)
      const before = size
      size += chunk.length
      if (opts.onBytes && before >>> 20 !== size >>> 20) opts.onBytes(size)
      if (!(written ? stream.write(chunk, written(chunk)) : stream.write(chunk))) await drain(stream, signal)
    }
    throwIfAborted(signal)
    stream.end()
    await finished(stream)
    if (streamError) throw streamError

    const diffId = `sha256:${diffHash.digest('hex')}` as Digest
    const digest = digestHash ? (`sha256:${digestHash.digest('hex')}` as Digest) : diffId
    await writer.commit(digest)
    // The record is derived: without it a budget reads the layer instead, so failing to keep it fails nothing.
    await writeLayerSummary(blobs.root, digest, summary).catch(() => {})
    if (gzipped && opts.members) {
      await writeMemberIndex(opts.members.dir, { digest, level, zlib: process.versions.zlib, members: records })
      opts.members.onDone?.({ reused: reused.n, compressed: records.length - reused.n })
    }
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
  } finally {
    previous?.close()
  }
}

/**
 * Orders entries the way a deterministic layer wants them: by path compared byte-wise (UTF-8)
 * component by component, so a parent comes before its children and 'a/b' right after 'a' (before
 * 'a-b'). This is the order of GNU `tar --sort=name`. The sort is stable; duplicates are kept.
 *
 * A hard link must come after the file it names or extractors cannot create it. When a link sorts
 * before its target, the two swap roles: the first path of the group carries the content and the
 * others link to it (they share one inode, so the bytes and metadata are the same).
 */
export function sortEntries<E extends LayerEntry>(entries: Iterable<E>): E[] {
  // '/' → NUL makes plain byte order equal component order; latin1 over the name's bytes makes JS
  // string comparison (UTF-16 code units) equal byte order.
  // An ASCII path is its own latin1-of-bytes form: no Buffer per entry (a tenth of a no-op COPY check).
  const keyed = Array.from(entries, (e) => {
    const k = e.path.replaceAll('/', '\0')
    return { e, k: isAscii(k) ? k : nameBytes(k).toString('latin1') }
  })
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
  const out = keyed.map((x) => x.e)
  return out.some((e) => e.type === 'hardlink') ? hardlinksAfterTargets(out) : out
}


function hardlinksAfterTargets<E extends LayerEntry>(sorted: E[]): E[] {
  const pos = new Map<string, number>()
  sorted.forEach((e, i) => { if (!pos.has(e.path)) pos.set(e.path, i) })
  const groups = new Map<number, number[]>() // target position → link positions
  sorted.forEach((e, i) => {
    if (e.type !== 'hardlink') return
    const t = pos.get(e.linkname)
    if (t === undefined || sorted[t]!.type === 'hardlink') return
    groups.set(t, [...(groups.get(t) ?? []), i])
  })
  const out = sorted.slice()
  for (const [t, links] of groups) {
    const first = Math.min(...links)
    if (first > t) continue
    const target = sorted[t]!
    const head = sorted[first]!
    out[first] = { ...target, path: head.path } as E
    out[t] = { ...head, path: target.path, linkname: head.path } as E
    for (const l of links) if (l !== first) out[l] = { ...sorted[l]!, linkname: head.path } as E
  }
  return out
}

function isIterable<T>(x: Iterable<T> | AsyncIterable<T>): x is Iterable<T> {
  return typeof (x as Iterable<T>)[Symbol.iterator] === 'function'
}

/**
 * Tar chunks of sync entries, hashed (diffID) on the way out: no await per entry or chunk. With a
 * splitter, the uncompressed gzip members instead (the chunks go back to the serializer once copied).
 */
function* tarSync(tar: TarSerializer, entries: Iterable<LayerEntry>, hash: Hash, signal: AbortSignal | undefined, splitter?: MemberSplitter): Generator<Buffer | RawMember> {
  for (const e of entries) {
    splitter?.entryStart(tar.position, e)
    for (const c of tar.add(e)) {
      throwIfAborted(signal)
      yield* pass(tar, c, hash, splitter)
    }
    splitter?.entryEnd(tar.position, e)
  }
  for (const c of tar.end()) yield* pass(tar, c, hash, splitter)
  const last = splitter?.finish()
  if (last) yield last
}

async function* tarAsync(tar: TarSerializer, entries: AsyncIterable<LayerEntry>, hash: Hash, signal: AbortSignal | undefined, splitter?: MemberSplitter): AsyncGenerator<Buffer | RawMember> {
  for await (const e of entries) {
    splitter?.entryStart(tar.position, e)
    for (const c of tar.add(e)) {
      throwIfAborted(signal)
      yield* pass(tar, c, hash, splitter)
    }
    splitter?.entryEnd(tar.position, e)
  }
  for (const c of tar.end()) yield* pass(tar, c, hash, splitter)
  const last = splitter?.finish()
  if (last) yield last
}

function* pass(tar: TarSerializer, chunk: Buffer, hash: Hash, splitter: MemberSplitter | undefined): Generator<Buffer | RawMember> {
  hash.update(chunk)
  if (!splitter) {
    yield chunk
    return
  }
  yield* splitter.feed(chunk)
  tar.release(chunk)
}

const noted = (e: LayerEntry): SummaryEntry => [e.path, e.type, e.type === 'file' ? e.size : 0, e.mode, e.uid, e.gid]

function* notedSync(entries: Iterable<LayerEntry>, out: SummaryEntry[]): Generator<LayerEntry> {
  for (const e of entries) {
    out.push(noted(e))
    yield e
  }
}

async function* notedAsync(entries: AsyncIterable<LayerEntry>, out: SummaryEntry[]): AsyncGenerator<LayerEntry> {
  for await (const e of entries) {
    out.push(noted(e))
    yield e
  }
}

/** Passes the compressed members on, keeping their records (the blob's member index). */
async function* recordMembers(members: AsyncIterable<MemberOut>, records: MemberRecord[], reused: { n: number }): AsyncGenerator<Buffer> {
  for await (const m of members) {
    records.push(m.record)
    if (m.reused) reused.n++
    yield m.bytes
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
