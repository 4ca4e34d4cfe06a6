/**
 * COPY: files from the build context (or, with `fromInput`, from another stage's filesystem) into
 * one new layer, with Docker/BuildKit's rules for sources, globs, destinations and ownership.
 */
import { cpuSlotOf } from '../solver/scheduler.js'
import { writeWithSnapshot } from '../snapshot/unpack.js'
import { prewritable } from '../snapshot/from-entries.js'
import { isAbsolute, relative } from 'node:path'
import { CopyError, ErrorCodes, ImagesmithError } from '../errors.js'
import type { CopySpec, InlineFile } from '../graph/nodes/copy-node.js'
import { historyText } from '../graph/instruction-text.js'
import type { AddSpec } from '../graph/nodes/add-node.js'
import type { LayerEntry } from '../layer/entry.js'
import { writeLayer } from '../layer/write-layer.js'
import type { CacheKeyDoc, ExecContext, ExecResult, Executor, ImageState, LayerPlan } from '../solver/types.js'
import type { Vertex } from '../graph/node.js'
import { canonicalJson, digestOf } from '../util/canonical-json.js'
import { withRootfs } from '../snapshot/rootfs.js'
import { EntrySet, type Owner } from '../context/collect.js'
import { contentKey, StatCache } from '../context/content-key.js'
import { loadDockerignore, PatternMatcher } from '../context/dockerignore.js'
import { readImageFile } from './image-file.js'
import { cachedLayer, execPlan, type MissDetail, type PreviousBuild } from '../cache/layer-cache.js'
import { dropTreeRecord, readTreeRecord, treeStamp, writeTreeRecord } from '../context/tree-record.js'
import type { Digest } from '../oci/media-types.js'
import type { LayerRef } from '../oci/types.js'
import { FILE_MAP_LIMIT } from '../cache/miss-reason.js'
import { addDestDirs, findSources, placeSources, resolveDest, type Dest, type SourceRoot } from './placement.js'
import { literalCopySpec, solveBudget } from './expand-spec.js'
import { withLayer } from './state.js'
import { resolveUser } from './users.js'

/**
 * `--chown` → ids. Numeric `uid[:gid]` is taken as it is (a lone uid also becomes the gid, as
 * BuildKit's ChownOpt does); names are looked up in the image's /etc/passwd and /etc/group.
 */
export async function resolveOwner(ctx: ExecContext, parent: ImageState, chown: string | undefined): Promise<Owner> {
  if (chown === undefined || chown === '') return { uid: 0, gid: 0 }
  const [u = '', g] = chown.split(':', 2) as [string, string | undefined]
  const num = (s: string): boolean => /^\d+$/.test(s)
  if (num(u) && (g === undefined || g === '' || num(g))) {
    return { uid: Number(u), gid: g === undefined || g === '' ? Number(u) : Number(g) }
  }
  const passwd = (await readImageFile(ctx.store, parent.layers, '/etc/passwd', ctx.signal))?.toString('utf8')
  const group = (await readImageFile(ctx.store, parent.layers, '/etc/group', ctx.signal))?.toString('utf8')
  const r = resolveUser(chown, passwd, group)
  return { uid: r.uid, gid: r.gid }
}

/** BuildKit's history text for COPY/ADD (graph/instruction-text). */
export function createdBy(kind: 'COPY' | 'ADD', spec: CopySpec | AddSpec): string {
  return kind === 'COPY' ? historyText('copy', spec)! : historyText('add', spec as AddSpec)!
}

function chmodOf(spec: { readonly chmod?: string }): number | undefined {
  return spec.chmod === undefined ? undefined : parseInt(spec.chmod, 8)
}

function excludeOf(spec: { readonly exclude: readonly string[] }): PatternMatcher | undefined {
  return spec.exclude.length > 0 ? new PatternMatcher(spec.exclude) : undefined
}

/** Several sources need a directory destination (`dest/`), unless `--parents` keeps their paths (shared with ADD). */
export function requireDirDest(sources: number, dest: Dest, written: string, parents = false): void {
  if (sources > 1 && !dest.dirSyntax && !parents) {
    throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `with more than one source the destination must be a directory ending in '/', got ${written}`, { path: written, dest: written })
  }
}

/** Builds the entry set for context sources (shared with ADD's non-archive local files). */
export function planContext(ctx: ExecContext, sources: readonly string[], spec: CopySpec | AddSpec, dest: Dest, owner: Owner): EntrySet {
  requireDirDest(sources.length, dest, spec.dest, spec.parents)
  const ignorePatterns = loadDockerignore(ctx.contextDir, ctx.dockerignore)
  const root: SourceRoot = { root: ctx.contextDir, label: `the build context ${ctx.contextDir}`, ...(ignorePatterns.length > 0 ? { ignore: new PatternMatcher(ignorePatterns) } : {}) }
  const set = new EntrySet()
  const exclude = excludeOf(spec)
  const chmod = chmodOf(spec)
  placeSources(set, findSources(sources, root), root, dest, {
    owner, mtime: ctx.epoch, destWritten: spec.dest, multi: sources.length > 1, ...(spec.parents ? { parents: true } : {}),
    ...(exclude ? { exclude } : {}), ...(chmod !== undefined ? { chmod } : {}),
  })
  return set
}

/** A file given by its content (a heredoc), placed as a source file of that name would be. */
export function placeInline(set: EntrySet, f: InlineFile, dest: Dest, owner: Owner, mtime: number, chmod: number | undefined, multi: boolean): void {
  const toDir = dest.dirSyntax || dest.existsDir || multi
  const target = toDir ? (dest.path ? `${dest.path}/${f.name}` : f.name) : dest.path
  if (target === '') throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `cannot copy ${f.name} onto the image root`, { path: f.name })
  addDestDirs(set, dest, owner, mtime, toDir)
  const data = Buffer.from(f.data, 'utf8')
  set.add({ type: 'file', path: target, mode: chmod ?? 0o644, uid: owner.uid, gid: owner.gid, mtime, size: data.length, source: { data } })
}

/** A context file by its path in the context; what has no file there (directories made, inline files) by its path in the image. */
function contextName(ctx: ExecContext, e: LayerEntry): string {
  const src = e.type === 'file' && 'path' in e.source ? e.source.path : undefined
  if (src === undefined) return `/${e.path}`
  // Every file of a 10k-file check passes here on each build, hit or not: a prefix cut for the
  // usual case (sources are joined onto the resolved context dir), path.relative otherwise.
  const dir = ctx.contextDir
  if (src.length > dir.length + 1 && src.startsWith(dir) && src[dir.length] === '/' && !dir.endsWith('/')) return src.slice(dir.length + 1)
  const rel = relative(dir, src)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : `/${e.path}`
}

/** What the parent image decides about a COPY: the spec expanded in its env, where it lands, who owns it. */
interface Placement {
  readonly spec: CopySpec
  readonly dest: Dest
  readonly owner: Owner
}

type Made = Awaited<ReturnType<typeof cachedLayer>>

async function placementOn(vertex: Vertex<'copy'>, parent: ImageState, ctx: ExecContext): Promise<Placement> {
  const spec = literalCopySpec(vertex.spec, parent, solveBudget(ctx))
  const dest = await resolveDest(ctx, parent, spec.dest, spec.link)
  const owner = await resolveOwner(ctx, parent, spec.chown)
  return { spec, dest, owner }
}

/**
 * Everything of the parent a COPY's layer depends on: the expanded spec, the working dir, the
 * destination after the image's symlinks, the image's nodes on the way there (existing dirs keep
 * their mode and owner in the layer) and the owner ids. Part of the cache key, and what an early
 * start compares with the real parent.
 */
function placementDoc({ spec, dest, owner }: Placement): Record<string, unknown> {
  const destNodes = Object.fromEntries([...dest.nodes].map(([k, v]) => [k, v && { type: v.type, mode: v.mode, uid: v.uid, gid: v.gid }]))
  return { spec, workdir: dest.workdir, dest: dest.path, uid: owner.uid, gid: owner.gid, destNodes }
}

/**
 * What a placement means for the layer, for comparing an early guess with the real parent: a path
 * the image does not have is the same whether it was looked up (null) or the image had no layers
 * to look in (absent), so a COPY on `FROM scratch` guesses right for the COPY steps after it.
 */
function placementMeaning(place: Placement): string {
  const doc = placementDoc(place)
  const nodes = Object.entries(doc['destNodes'] as Record<string, unknown>).filter(([, v]) => v !== null)
  return canonicalJson({ ...doc, destNodes: Object.fromEntries(nodes) })
}

/** A COPY's layer step up to stacking it: its key, the per-file digests hashed for it, what makes it. */
type KeyedLayer = Pick<LayerPlan, 'keyDoc' | 'detail' | 'make'>

/**
 * The COPY's key and maker: the context is hashed here, once; the maker checks the bytes it writes
 * against those hashes. Depends on the parent only through `place`.
 */
async function keyedLayer(vertex: Vertex<'copy'>, inputs: readonly ImageState[], place: Placement, ctx: ExecContext): Promise<KeyedLayer> {
  const { spec, dest, owner } = place
  const step = ctx.step
  const onBytes = step ? (bytes: number) => ctx.emit({ type: 'bytes', vertex: step.vertex, bytes, time: Date.now() }) : undefined
  const layerOpts = { compression: ctx.compression, ...(ctx.signal ? { signal: ctx.signal } : {}), ...cpuSlotOf(ctx.limits, ctx.signal), ...(onBytes ? { onBytes } : {}) }
  const base = { kind: 'copy', ...placementDoc(place), epoch: ctx.epoch, compression: ctx.compression }

  if (spec.fromInput) {
    const from = inputs[1]
    if (!from) throw new CopyError(ErrorCodes.GRAPH_INVALID, 'COPY --from has no source stage input', { step: vertex.meta.description })
    requireDirDest(spec.sources.length, dest, spec.dest, spec.parents)
    // The source stage's layers determine its files exactly (diffIDs are content digests), so
    // they stand in for the content key and the rootfs is only assembled on a cache miss.
    const keyDoc = { ...base, from: from.config.rootfs.diff_ids }
    return {
      keyDoc,
      ...(vertex.meta.inputs ? { detail: { inputs: vertex.meta.inputs } } : {}),
      make: () => withRootfs(ctx.store, from.layers, ctx.signal ? { signal: ctx.signal } : {}, async (dir) => {
        const root: SourceRoot = { root: dir, skipWhiteouts: true }
        const set = new EntrySet()
        const exclude = excludeOf(spec)
        const chmod = chmodOf(spec)
        placeSources(set, findSources(spec.sources, root), root, dest, {
          owner, mtime: ctx.epoch, destWritten: spec.dest, multi: spec.sources.length > 1, ...(spec.parents ? { parents: true } : {}),
          ...(exclude ? { exclude } : {}), ...(chmod !== undefined ? { chmod } : {}),
        })
        return writeLayer(set.finalize(), ctx.store.blobs, layerOpts)
      }),
    }
  }

  const all = spec.sources.length + (spec.inline?.length ?? 0)
  requireDirDest(all, dest, spec.dest, spec.parents)
  // The entries are made only when something needs them: a probe record (below) gives the key without.
  let planned: LayerEntry[] | undefined
  const plan = (): LayerEntry[] => {
    if (planned) return planned
    const set = spec.sources.length > 0 ? planContext(ctx, spec.sources, spec, dest, owner) : new EntrySet()
    for (const f of spec.inline ?? []) placeInline(set, f, dest, owner, ctx.epoch, chmodOf(spec), all > 1)
    return (planned = set.finalize())
  }
  const statDir = ctx.store.layout.dir('statCache')
  // Per-file digests are kept beside the key (not in it) so a miss can name the files that changed.
  // What each entry put into the key, as it came: the per-file map a miss is explained with is made
  // from it only on a miss (a hit never builds 10k names into an object).
  let seen: { readonly entries: LayerEntry[]; readonly what: string[] } | undefined
  let fileMap: Record<string, string> | undefined
  const files = (): Record<string, string> | undefined => seen && (fileMap ??= Object.fromEntries(seen.entries.map((e, i) => [contextName(ctx, e), seen!.what[i]!])))
  // The context is the user's to edit while we build: the writer checks every file's bytes against
  // the hash the key was made with, so the entry stored under the key holds the bytes it names.
  const expect = new Map<string, string>()
  let stats: StatCache | undefined
  /** The content key from every file's hash (the stat cache saves reading unchanged ones). */
  const hashAll = async (): Promise<{ content: Digest; settled: boolean }> => {
    const entries = plan()
    seen = entries.length <= FILE_MAP_LIMIT ? { entries: [], what: [] } : undefined
    stats = await StatCache.open(statDir, ctx.contextDir)
    const content = contentKey(entries, stats, seen && ((e, d) => { seen!.entries.push(e); seen!.what.push(d) }), expect)
    await stats.save()
    return { content, settled: stats.settled }
  }
  // A listing of the whole context taken before anything here (context/tree-probe.ts): its record
  // gives the key without a walk. Keyed with everything else the entries depend on.
  const probe = spec.sources.length > 0 ? await ctx.contextProbe?.() : undefined
  const probeKey = probe && probe.dir === ctx.contextDir ? probeRecordKey(probe.digest, ctx, base) : undefined
  const probed = probeKey === undefined ? undefined : await readTreeRecord(statDir, probeKey)
  // Else the walk's stamps, summarised: when a record of them exists, the key is taken from it.
  // Either way the files are hashed only if the step misses anyway (`prepare` below), before
  // anything is written.
  const tree = probed ? undefined : treeStamp(plan())
  const recorded = probed ?? (tree === undefined ? undefined : await readTreeRecord(statDir, tree))
  let content: Digest
  if (recorded) content = recorded
  else {
    const all = await hashAll()
    content = all.content
    if (tree !== undefined && all.settled) await writeTreeRecord(statDir, tree, content).catch(() => undefined)
  }
  // A probe lists the tree before the walk and the hashes: a file changed since then shows in every
  // later listing, so its record can only name content at least as new as the listing. Not written
  // when a file was hashed in its racy window (the stat cache kept no record of it either).
  if (probeKey !== undefined && !probed && probe!.settled() && (recorded !== undefined || stats?.settled === true)) {
    await writeTreeRecord(statDir, probeKey, content).catch(() => undefined)
  }
  const dropRecords = async () => {
    // The walk's record too when the key came from the listing's: both were written with one key.
    const walked = tree ?? (planned && treeStamp(planned))
    if (walked !== undefined) await dropTreeRecord(statDir, walked).catch(() => undefined)
    if (probeKey !== undefined) await dropTreeRecord(statDir, probeKey).catch(() => undefined)
  }
  let full: Promise<void> | undefined
  const prepare = recorded === undefined ? undefined : () => (full ??= hashAll().then(async ({ content: now }) => {
    if (now === recorded) return
    // The record named other bytes than the files hold now: they changed after the walk (or the
    // record was wrong). The key was made from the record, so nothing may be stored under it.
    await dropRecords()
    throw new CopyError(ErrorCodes.SOURCE_CHANGED, `the build context ${ctx.contextDir} changed while ${vertex.meta.description} was checked; build again`, { step: vertex.meta.description })
  }))
  const keyDoc = { ...base, content }
  // The previous layer of this step lends its unchanged gzip members (layer/members.ts).
  const checked = (previous?: PreviousBuild) => ({ ...layerOpts, expect, proven: (p: string) => stats?.provenStamp(p), members: { dir: ctx.store.layout.dir('layerMembers'), ...(previous ? { previous: { digest: previous.layer.digest, path: ctx.store.blobs.blobPath(previous.layer.digest) } } : {}) } })
  const make = async (previous?: PreviousBuild): Promise<LayerRef> => {
    await prepare?.()
    const entries = plan()
    return forgetChanged(stats!, dropRecords, () =>
      ctx.step?.rootfsWanted && prewritable(entries)
        ? writeWithSnapshot(ctx.store, (tee) => writeLayer(entries, ctx.store.blobs, { ...checked(previous), tee }), {
          ...(ctx.signal ? { signal: ctx.signal } : {}),
          ...(previous && sameBut('content', previous.keyDoc, keyDoc)
            ? { previous: { layer: previous.layer, same: (e: LayerEntry) => e.type === 'file' && 'path' in e.source && previous.unchanged(contextName(ctx, e)) } }
            : {}),
        })
        : writeLayer(entries, ctx.store.blobs, checked(previous)))
  }
  // The per-file map is made only when a miss asks for it (a hit never builds 10k names into an object).
  // (Built without spreads: a spread would call the getter now, before `prepare` filled `seen`.)
  const detail: MissDetail = prepare ? { prepare, get files() { return files() } } : { get files() { return files() } }
  return {
    keyDoc,
    detail,
    // When a later step of this build assembles a rootfs holding this layer, its snapshot is
    // written in the same pass as the layer, from the same reads: a RUN on top must not gunzip and
    // untar it back. Otherwise (a COPY-only image) the second copy would be pure cost.
    make,
  }
}

/**
 * The name of a probe record: the listing's digest and everything else a context COPY's entries are
 * made from (the key document but its content: spec, destination, owner, epoch; the context dir and
 * its ignore patterns), in a hash domain of its own beside the walk's tree records.
 */
function probeRecordKey(listing: string, ctx: ExecContext, base: Record<string, unknown>): string {
  const ignore = loadDockerignore(ctx.contextDir, ctx.dockerignore)
  return digestOf({ probe: listing, contextDir: ctx.contextDir, ignore, base }).slice('sha256:'.length)
}

/**
 * A file whose bytes differed from its key's hash leaves the stat cache, and the tree record made
 * with that hash goes too: had either come from a record whose stamp hid a write, every later build
 * would otherwise fail on it the same way.
 */
async function forgetChanged<T>(stats: StatCache, dropTree: (() => Promise<void>) | undefined, make: () => Promise<T>): Promise<T> {
  try {
    return await make()
  } catch (e) {
    if (e instanceof ImagesmithError && e.code === ErrorCodes.SOURCE_CHANGED && typeof e.details.source === 'string') {
      stats.forget(e.details.source)
      await stats.save()
      await dropTree?.().catch(() => undefined)
    }
    throw e
  }
}

/**
 * Whether two key documents differ at most in `field`: then the same context file lands at the
 * same image path with the same metadata in both layers (only contents may differ).
 */
function sameBut(field: string, a: CacheKeyDoc, b: CacheKeyDoc): boolean {
  const { [field]: _a, ...restA } = a
  const { [field]: _b, ...restB } = b
  return canonicalJson(restA) === canonicalJson(restB)
}

function stack(parent: ImageState, made: Made, place: Placement, ctx: ExecContext): ExecResult {
  const { layer, cached, key, reason } = made
  return { state: withLayer(parent, ctx, layer, createdBy('COPY', place.spec)), cached, key, ...(reason !== undefined ? { reason } : {}) }
}

/** A COPY from another directory (a named context) reads it as its context, with that directory's own .dockerignore. */
function contextOf(vertex: Vertex<'copy'>, ctx: ExecContext): ExecContext {
  const dir = vertex.spec.context
  if (dir === undefined) return ctx
  const { dockerignore: _mainIgnore, ...rest } = ctx
  return { ...rest, contextDir: dir }
}

export const copyExecutor: Executor<'copy'> = {
  kind: 'copy',
  async exec(vertex, inputs, c) {
    return execPlan(await copyExecutor.prepare!(vertex, inputs, c), c)
  },

  async prepare(vertex, inputs, c): Promise<LayerPlan> {
    const ctx = contextOf(vertex, c)
    const parent = inputs[0]!
    const place = await placementOn(vertex, parent, ctx)
    return { ...(await keyedLayer(vertex, inputs, place, ctx)), finish: (layer) => withLayer(parent, ctx, layer, createdBy('COPY', place.spec)) }
  },

  /**
   * The rule for starting before the parent (RUN steps) is done: a COPY's layer depends on its
   * parent only through {@link placementDoc} (the spec expanded in the stage's env, the working dir,
   * the destination through the image's symlinks, the existing dirs on the way and their modes, the
   * `--chown` ids, names looked up in the image's /etc/passwd and /etc/group). The solver hands an
   * ancestor whose config is the parent's (RUN changes only files); the layer is made on what the
   * ancestor's files say, and kept only when the real parent says the same. Otherwise (a RUN made
   * the destination dir, changed its mode, added the `--chown` user) the COPY is made again on the
   * real parent, as if it had waited; the early layer stays a valid cache entry under its own key.
   */
  async early(vertex, inputs, c0) {
    const ctx = contextOf(vertex, c0)
    const guess = await placementOn(vertex, inputs[0]!, ctx)
    const keyed = await keyedLayer(vertex, inputs, guess, ctx)
    const made = await cachedLayer(ctx, keyed.keyDoc, keyed.make, keyed.detail)
    const guessed = placementMeaning(guess)
    return async (real, c1) => {
      const c = contextOf(vertex, c1)
      const place = await placementOn(vertex, real[0]!, c)
      if (placementMeaning(place) === guessed) return stack(real[0]!, made, place, c)
      const redo = await copyExecutor.exec(vertex, real, c1)
      // The early miss already moved the step's slot to the guessed key: its reason (against the
      // step's previous build) is the one to report, not a diff with the guess.
      return !made.cached && !redo.cached && made.reason !== undefined ? { ...redo, reason: made.reason } : redo
    }
  },
}
