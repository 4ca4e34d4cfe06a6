/**
 * Unpacks layer blobs into the store's snapshot dirs (`store.snapshotDir(diffId)`), once per layer
 * for every build that uses it, in the form overlayfs reads as a lower dir.
 *
 * The blob is decompressed in Node (and its diffID checked on the way) and piped into GNU `tar -x`,
 * 5× faster than node-tar (limits.md). Extraction goes to a private temp dir that is renamed into
 * place at the end, so a concurrent build sees either no snapshot or a complete one, and a killed
 * build leaves only a temp dir (removed by the next unpack once its pid is gone).
 *
 * OCI whiteouts become overlay whiteouts: `.wh.<name>` → a 0/0 char device `<name>`, and
 * `.wh..wh..opq` → the xattr `trusted.overlay.opaque=y` on its directory.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, type Hash } from 'node:crypto'
import { existsSync, lstatSync, readdirSync, unlinkSync, utimesSync, type Stats } from 'node:fs'
import { mkdir, readFile, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { abortError, ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import type { LayerRef } from '../oci/types.js'
import { fsPath, nameFromBytes } from '../util/names.js'
import { renameOrDiscard, tempPath, writeFileAtomic } from '../store/atomic-write.js'
import { storeSlot, type Store } from '../store/store.js'
import { sniffFile } from '../util/sniff.js'
import { xargs } from './xargs.js'
import { opaqueXattr } from './overlay.js'
import { unmappedFromTar } from '../host/ids.js'
import { spreadDir, treeRoot } from '../host/tree-root.js'
import { CreateStaging } from '../host/create-staging.js'
import type { LayerEntry } from '../layer/entry.js'
import { SnapshotTee, type SnapshotReuse } from './from-entries.js'
import { subStep } from '../util/progress-scope.js'

export interface Snapshot {
  /** The unpacked layer, usable as an overlay lower dir. Never write to it. */
  readonly dir: string
  /** Whether the layer holds whiteouts or opaque dirs (it then needs overlay to be read correctly). */
  readonly whiteouts: boolean
}

interface SnapshotMeta {
  readonly whiteouts: boolean
}

/** Unpacks under way in this store, by snapshot dir (per store: two stores never share one). */
const IN_FLIGHT = storeSlot('snapshot unpacks in flight', () => new Map<string, Promise<Snapshot>>())

/**
 * Unpacks `layer` into its snapshot dir unless it is there already; concurrent calls share the work.
 * An aborted caller stops waiting at once, but a shared unpack runs to its end (another build may
 * be waiting for it, and a finished snapshot is reused later).
 */
export function ensureSnapshot(store: Store, layer: LayerRef, opts: { signal?: AbortSignal } = {}): Promise<Snapshot> {
  const dir = store.snapshotDir(layer.diffId)
  const inFlight = store.local(IN_FLIGHT)
  let p = inFlight.get(dir)
  if (!p) {
    p = unpackOnce(store, layer, dir, undefined).finally(() => inFlight.delete(dir))
    p.catch(() => undefined) // reported to every waiter; never unhandled when all of them gave up
    inFlight.set(dir, p)
  }
  return raceAbort(p, opts.signal)
}

/**
 * Writes a layer with `write` and its snapshot in the same pass: `write` hands the tee to the layer
 * writer, which gives it every entry and file byte as it reads them (see from-entries.ts), so the
 * layer is neither gunzipped and untarred back nor its files read twice. The tree fills a private
 * temp dir; once the layer's diffID is known it is placed as {@link placeOnce} places an unpacked one
 * (lease hold, meta first, renamed, or discarded when the snapshot is there already). When the tee
 * gave up (an entry it cannot write, a write error) the dir is dropped and the layer is still
 * returned: a later {@link ensureSnapshot} unpacks it. With `previous` (the layer this step made in
 * its last build, and which entries are unchanged since), files are hard-linked from that layer's
 * snapshot when it is there: one changed file costs one file written, not ten thousand.
 */
export async function writeWithSnapshot(
  store: Store,
  write: (tee: SnapshotTee) => Promise<LayerRef>,
  opts: { signal?: AbortSignal; previous?: { readonly layer: LayerRef; readonly same: (entry: LayerEntry) => boolean } } = {},
): Promise<LayerRef> {
  const tmp = await snapshotTemp(store, 'written')
  const discard = () => rm(tmp, { recursive: true, force: true }).catch(() => undefined)
  // The previous build's snapshot of the same step, held before it is looked for (store/lease.ts):
  // its unchanged files are hard-linked, not written again.
  let reuse: SnapshotReuse | undefined
  if (opts.previous) {
    const { layer: prev, same } = opts.previous
    await store.lease.hold({ snapshots: [prev.diffId] })
    const dir = store.snapshotDir(prev.diffId)
    const meta = await readMeta(dir)
    if (meta && !meta.whiteouts) reuse = { dir, same }
  }
  let layer: LayerRef
  let tee: SnapshotTee | undefined
  try {
    tee = new SnapshotTee(tmp, { ...(reuse ? { reuse } : {}), staging: new CreateStaging(store.layout.dir('snapshots')) })
    layer = await write(tee)
  } catch (e) {
    await tee?.settle()
    await discard()
    throw e
  }
  if (!(await tee.finish()) || opts.signal?.aborted) {
    await discard()
    return layer
  }
  const dir = store.snapshotDir(layer.diffId)
  const inFlight = store.local(IN_FLIGHT)
  if (inFlight.has(dir)) {
    await discard()
    return layer
  }
  const p = (async (): Promise<Snapshot> => {
    const existing = await heldSnapshot(store, layer, dir)
    if (existing) {
      await discard()
      return existing
    }
    return commitSnapshot(tmp, dir, false)
  })().finally(() => inFlight.delete(dir))
  p.catch(() => undefined)
  inFlight.set(dir, p)
  // The layer is made: a snapshot that could not be placed is unpacked later instead.
  await p.catch(discard)
  return layer
}

/**
 * Makes the snapshot of `layer` at `dir` unless it is there: `fill` writes the tree into a private
 * temp dir and says whether it holds whiteouts; the meta file goes first (a placed dir whose meta is
 * missing is read as "has whiteouts"), then the dir is renamed into place, discarded when another
 * process finished first (same bytes).
 */
async function placeOnce(store: Store, layer: LayerRef, dir: string, fill: (tmp: string) => Promise<boolean>, signal?: AbortSignal): Promise<Snapshot> {
  const existing = await heldSnapshot(store, layer, dir)
  if (existing) return existing
  throwIfAborted(signal)
  const tmp = await snapshotTemp(store, basename(dir))
  let whiteouts: boolean
  try {
    whiteouts = await fill(tmp)
    throwIfAborted(signal)
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined)
    if (signal?.aborted) throw abortError(signal)
    throw noSpace(e, dirname(dir)) ?? e
  }
  try {
    return await commitSnapshot(tmp, dir, whiteouts)
  } catch (e) {
    throw noSpace(e, dirname(dir)) ?? e
  }
}

/** A full disk (errno ENOSPC/EDQUOT) while a snapshot was written: NO_SPACE naming where, not the blob's fault. */
function noSpace(e: unknown, path: string): ImagesmithError | undefined {
  const errno = (e as NodeJS.ErrnoException)?.code
  if (errno !== 'ENOSPC' && errno !== 'EDQUOT') return undefined
  return new ImagesmithError(ErrorCodes.NO_SPACE, `no space left on device writing ${(e as NodeJS.ErrnoException).path ?? path}`, { path: (e as NodeJS.ErrnoException).path ?? path, errno }, { cause: e })
}

/** GNU tar's message for a write the disk refused: the layer is fine, the disk is full. */
const TAR_NO_SPACE = /No space left on device|Disk quota exceeded/

/**
 * The placed snapshot of `layer` at `dir`, or undefined. The build's lease holds it (and the layer's
 * blob) before it is looked for, so a prune never takes it from under a build that found it (store/lease.ts).
 */
async function heldSnapshot(store: Store, layer: LayerRef, dir: string): Promise<Snapshot | undefined> {
  await store.lease.hold({ snapshots: [layer.diffId], blobs: [layer.digest] })
  return readMeta(dir)
}

/** A private temp dir beside the snapshots for a tree about to be placed (its writer's pid in the name: swept if it dies). */
async function snapshotTemp(store: Store, stem: string): Promise<string> {
  const root = store.layout.dir('snapshots')
  await treeRoot(root)
  await store.sweepOnce(root)
  return spreadDir(async () => {
    const tmp = tempPath(root, stem)
    await mkdir(tmp, { mode: 0o755 })
    return tmp
  })
}

/** Meta first (a placed dir whose meta is missing is read as "has whiteouts"), then the rename. */
async function commitSnapshot(tmp: string, dir: string, whiteouts: boolean): Promise<Snapshot> {
  try {
    await writeFileAtomic(`${dir}.json`, JSON.stringify({ whiteouts } satisfies SnapshotMeta))
    await renameOrDiscard(tmp, dir)
    return { dir, whiteouts }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined)
    throw e
  }
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p
  if (signal.aborted) return Promise.reject(abortError(signal))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v) },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e) },
    )
  })
}

/** Ensures every layer's snapshot, two at a time (tar and gunzip each keep a core busy). */
export async function ensureSnapshots(store: Store, layers: readonly LayerRef[], opts: { signal?: AbortSignal } = {}): Promise<Snapshot[]> {
  // Unpacking is a line of its own in progress, when there is any to do (util/progress-scope.ts).
  const missing = layers.filter((l) => !existsSync(store.layout.snapshot(l.diffId))).length
  if (missing === 0) return unpackAll(store, layers, opts)
  return subStep(`unpack\0${layers.map((l) => l.diffId).join(',')}`, `[internal] unpack ${missing} layer${missing === 1 ? '' : 's'}`, () => unpackAll(store, layers, opts))
}

async function unpackAll(store: Store, layers: readonly LayerRef[], opts: { signal?: AbortSignal }): Promise<Snapshot[]> {
  const out: Snapshot[] = new Array(layers.length)
  let next = 0
  const worker = async () => {
    while (next < layers.length) {
      const i = next++
      out[i] = await ensureSnapshot(store, layers[i]!, opts)
    }
  }
  await Promise.all([worker(), worker()])
  return out
}

async function readMeta(dir: string): Promise<Snapshot | undefined> {
  try {
    await stat(dir)
  } catch {
    return undefined
  }
  try {
    const meta = JSON.parse(await readFile(`${dir}.json`, 'utf8')) as SnapshotMeta
    return { dir, whiteouts: meta.whiteouts === true }
  } catch {
    return { dir, whiteouts: true } // unknown: assume the careful case
  }
}

function unpackOnce(store: Store, layer: LayerRef, dir: string, signal: AbortSignal | undefined): Promise<Snapshot> {
  return placeOnce(store, layer, dir, async (tmp) => {
    await extract(store, layer, tmp, signal)
    return convertWhiteouts(tmp)
  }, signal)
}

/** blob → (decompress) → diffID check → `tar -x` into `dest`. */
async function extract(store: Store, layer: LayerRef, dest: string, signal: AbortSignal | undefined): Promise<void> {
  // A layer an imported cache answered for is fetched now, the first time its bytes are needed.
  await store.blobs.ensure(layer.digest, signal)
  const codec = await sniffFile(store.blobs.blobPath(layer.digest))
  const tarArgs = [
    '-x', '-f', '-', '-C', dest,
    '--numeric-owner', '--same-permissions', '--same-owner',
    '--xattrs', '--xattrs-include=security.capability', '--xattrs-include=user.*',
  ]
  const children: ChildProcess[] = []
  const tar = spawn('tar', tarArgs, { stdio: ['pipe', 'ignore', 'pipe'] })
  children.push(tar)
  let stderr = ''
  tar.stderr.on('data', (d: Buffer) => { if (stderr.length < 8192) stderr += d.toString() })
  const tarDone = new Promise<number>((res, rej) => { tar.on('error', rej); tar.on('close', (code) => res(code ?? 1)) })

  const hash = createHash('sha256')
  const tap = hashingSink(hash, tar.stdin)
  const flows: Promise<void>[] = []
  let zstdDone: Promise<number> | undefined
  if (codec === 'zstd') {
    const zstd = spawn('zstd', ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] })
    children.push(zstd)
    zstdDone = new Promise<number>((res, rej) => { zstd.on('error', rej); zstd.on('close', (code) => res(code ?? 1)) })
    flows.push(pipeline(store.blobs.open(layer.digest), zstd.stdin), pipeline(zstd.stdout, tap))
  } else if (codec === 'gzip') {
    flows.push(pipeline(store.blobs.open(layer.digest), createGunzip({ chunkSize: 256 << 10 }), tap))
  } else {
    flows.push(pipeline(store.blobs.open(layer.digest), tap))
  }

  const onAbort = () => { for (const c of children) c.kill('SIGKILL') }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    try {
      await Promise.all(flows)
    } catch (e) {
      for (const c of children) c.kill('SIGKILL')
      await tarDone.catch(() => undefined)
      throw e
    }
    const code = await tarDone
    // Checked first: a tar that died of a full disk also fails zstd (its pipe closed).
    if (code !== 0 && TAR_NO_SPACE.test(stderr)) {
      const errno = /Disk quota/.test(stderr) ? 'EDQUOT' : 'ENOSPC'
      throw new ImagesmithError(ErrorCodes.NO_SPACE, `no space left on device unpacking layer ${layer.digest} into ${dirname(dest)}`, { path: dirname(dest), digest: layer.digest, errno, stderr: stderr.slice(0, 2000) })
    }
    if (zstdDone && (await zstdDone) !== 0) throw new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `layer ${layer.digest}: zstd could not decompress it`, { digest: layer.digest })
    throwIfAborted(signal)
    if (code !== 0) {
      throw unmappedFromTar(stderr, layer.digest) ?? new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `layer ${layer.digest} could not be unpacked: ${stderr.trim()}`, { digest: layer.digest, stderr })
    }
    const diffId = `sha256:${hash.digest('hex')}`
    if (diffId !== layer.diffId) {
      throw new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `layer ${layer.digest} unpacks to ${diffId}, not its diffID ${layer.diffId}`, {
        digest: layer.digest,
        expected: layer.diffId,
        actual: diffId,
      })
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
}

/**
 * Hashes every byte and forwards it to `out` while `out` accepts it. GNU tar stops reading at the
 * end-of-archive blocks, so trailing padding must still reach the hash after tar closed its stdin.
 */
function hashingSink(hash: Hash, out: Writable): Writable {
  let closed = false
  let waiting: (() => void) | undefined
  const release = () => { const w = waiting; waiting = undefined; w?.() }
  out.on('error', () => { closed = true; release() })
  out.on('close', () => { closed = true; release() })
  out.on('drain', release)
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk)
      if (closed || out.write(chunk)) cb()
      else waiting = () => cb()
    },
    final(cb) {
      if (!closed) out.end()
      cb()
    },
  })
}

/**
 * Walks the freshly extracted tree once and rewrites OCI whiteouts into overlay's form, restoring
 * the mtimes of the directories it touched. Returns whether there were any.
 */
async function convertWhiteouts(root: string): Promise<boolean> {
  const whiteouts: string[] = []
  const opaque: string[] = []
  const stack = [root]
  while (stack.length > 0) {
    const d = stack.pop()!
    // Names are bytes (names.ts): read them raw, or a name that is not UTF-8 would be lost.
    for (const e of readdirSync(fsPath(d), { withFileTypes: true, encoding: 'buffer' })) {
      const name = nameFromBytes(e.name)
      if (e.isDirectory()) stack.push(join(d, name))
      else if (name.startsWith('.wh.')) {
        if (name === '.wh..wh..opq') opaque.push(d)
        else if (!name.startsWith('.wh..wh.')) whiteouts.push(join(d, name.slice(4)))
        else unlinkSync(fsPath(join(d, name))) // aufs metadata (.wh..wh.plnk etc.): meaningless here
      }
    }
  }
  if (whiteouts.length === 0 && opaque.length === 0) return false

  const parents = new Map<string, Stats>()
  for (const p of [...whiteouts.map(dirname), ...opaque]) if (!parents.has(p)) parents.set(p, lstatSync(fsPath(p)))
  for (const w of whiteouts) unlinkSync(fsPath(join(dirname(w), `.wh.${basename(w)}`)))
  for (const d of opaque) unlinkSync(fsPath(join(d, '.wh..wh..opq')))
  // A whiteout for a name the same layer also holds is malformed; the whiteout loses.
  const fresh = whiteouts.filter((w) => !existsNoFollow(w))
  if (fresh.length > 0) await xargs(['sh', '-c', 'for p do mknod -- "$p" c 0 0 || exit 1; done', 'sh'], fresh)
  if (opaque.length > 0) await xargs(['setfattr', '-n', opaqueXattr(), '-v', 'y', '--'], opaque)
  for (const [p, st] of parents) utimesSync(fsPath(p), st.atime, st.mtime)
  return true
}

function existsNoFollow(p: string): boolean {
  try {
    lstatSync(fsPath(p))
    return true
  } catch {
    return false
  }
}
