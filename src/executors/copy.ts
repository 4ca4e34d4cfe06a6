/**
 * COPY: files from the build context (or, with `fromInput`, from another stage's filesystem) into
 * one new layer, with Docker/BuildKit's rules for sources, globs, destinations and ownership.
 */
import type { Stats } from 'node:fs'
import { join, posix } from 'node:path'
import { CopyError, ErrorCodes } from '../errors.js'
import type { CopySpec } from '../graph/nodes/copy-node.js'
import type { AddSpec } from '../graph/nodes/add-node.js'
import type { DirEntry, LayerEntry } from '../layer/entry.js'
import { writeLayer } from '../layer/write-layer.js'
import type { ExecContext, Executor, ImageState } from '../solver/types.js'
import { withRootfs } from '../snapshot/rootfs.js'
import { digestOf } from '../util/canonical-json.js'
import { addTree, ancestors, entryFromStat, EntrySet, type EntryOptions, type Owner } from '../context/collect.js'
import { contentKey, StatCache } from '../context/content-key.js'
import { loadDockerignore, PatternMatcher } from '../context/dockerignore.js'
import { expandGlob, goClean, hasMeta, type GlobMatch } from '../context/glob.js'
import { readImageFile, resolveImagePath, type ImageNode } from './image-file.js'
import { cachedLayer } from './layer-cache.js'
import { withLayer } from './state.js'
import { resolveUser } from './users.js'

/** Where a COPY/ADD lands, resolved against the image it applies to. */
export interface Dest {
  /** Image path ('' = root) after following the image's symlinks. */
  readonly path: string
  /** The destination was written as a directory (trailing '/', or '.'). */
  readonly dirSyntax: boolean
  /** The destination already exists in the image as a directory (then it is one, slash or not). */
  readonly existsDir: boolean
  /** Image nodes of `path` and its ancestors (null = not in the image). */
  readonly nodes: ReadonlyMap<string, ImageNode | null>
  /** The image's working directory the destination was resolved against. */
  readonly workdir: string
}

/**
 * Resolves `dest` against the image's WorkingDir and follows the image's symlinks on it (BuildKit
 * resolves the destination inside the container root). With `link` (COPY --link) the layer must
 * not depend on the layers below, so the image is not consulted, as in BuildKit.
 */
export async function resolveDest(ctx: ExecContext, parent: ImageState, dest: string, link: boolean): Promise<Dest> {
  const workdir = parent.config.config.WorkingDir || '/'
  const abs = posix.resolve(workdir, dest)
  const dirSyntax = dest.endsWith('/') || dest === '.'
  const { path, nodes } = link || parent.layers.length === 0
    ? { path: abs.replace(/^\/+/, ''), nodes: new Map<string, ImageNode | null>() }
    : await resolveImagePath(ctx.store, parent.layers, abs, ctx.signal)
  for (const a of ancestors(path)) {
    const n = nodes.get(a)
    if (n && n.type !== 'dir') throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `destination ${dest}: /${a} is not a directory in the image`, { path: dest, dest })
  }
  const self = nodes.get(path)
  if (self && self.type !== 'dir' && dirSyntax) {
    throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `destination ${dest} is not a directory in the image`, { path: dest, dest })
  }
  return { path, dirSyntax, existsDir: self?.type === 'dir', nodes, workdir }
}

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

/** BuildKit's history text: `COPY [--parents] [--chown=…] [--chmod=…] <src>… <dest>` (no --from, --exclude or --link). */
export function createdBy(kind: 'COPY' | 'ADD', spec: CopySpec | AddSpec): string {
  let s = kind
  if (spec.chown) s += ` --chown=${spec.chown}`
  if (spec.chmod) s += ` --chmod=${spec.chmod}`
  for (const src of spec.sources) s += ` ${src}`
  return `${s} ${spec.dest} # buildkit`
}

/**
 * Ancestors of the destination (and the destination directory itself when `asDir`): existing
 * image directories keep their mode and owner, missing ones are created 0755. Created parents get
 * the --chown owner: BuildKit's copy makes them with fsutil's MkdirAll(0755, chown), so newer
 * BuildKit chowns them too.
 */
export function addDestDirs(set: EntrySet, dest: Dest, owner: Owner, mtime: number, asDir: boolean, created?: { mode: number }): void {
  const dirs = asDir && dest.path !== '' ? [...ancestors(dest.path), dest.path] : ancestors(dest.path)
  for (const a of dirs) {
    const n = dest.nodes.get(a)
    const e: DirEntry = n && n.type === 'dir'
      ? { type: 'dir', path: a, mode: n.mode, uid: n.uid, gid: n.gid, mtime }
      : { type: 'dir', path: a, mode: a === dest.path && created ? created.mode : 0o755, uid: owner.uid, gid: owner.gid, mtime }
    set.addDirIfAbsent(e)
  }
}

export interface SourceRoot {
  /** Host directory acting as '/' for the sources. */
  readonly root: string
  /** `.dockerignore` of the context (absent for another stage's filesystem). */
  readonly ignore?: PatternMatcher
  /** Skip 0/0 character devices: overlay whiteouts a merged stage view may show (see withRootfs). */
  readonly skipWhiteouts?: boolean
}

export interface Found {
  readonly src: string
  readonly match: GlobMatch
  /** Base of `--exclude` matching: the glob's literal directory, or the source's parent. */
  readonly excludeRel: string
}

/** Expands and checks the sources: outside the root, missing, ignored. */
export function findSources(sources: readonly string[], root: SourceRoot): Found[] {
  const out: Found[] = []
  for (const src of sources) {
    const clean = goClean(src)
    if (clean === '..' || clean.startsWith('../')) {
      throw new CopyError(ErrorCodes.COPY_OUTSIDE_CONTEXT, `source ${src} is outside the build context`, { path: src })
    }
    const rel = clean.replace(/^\/+/, '')
    const notFound = (): CopyError => new CopyError(ErrorCodes.COPY_SOURCE_NOT_FOUND, `source ${src} not found`, { path: src })
    // An ignored directory is still in the context when `!` patterns may re-include files below
    // it; the walk then takes only those.
    const ignored = (m: GlobMatch): boolean =>
      root.ignore !== undefined &&
      !(root.ignore.exclusions && m.stat?.isDirectory()) &&
      (root.ignore.matches(m.rel) || (m.written !== '' && root.ignore.matches(m.written)))
    const { matches, missingParent, base } = expandGlob(root.root, rel === '.' ? '' : rel)
    if (!hasMeta(rel)) {
      const m = matches[0]
      // A path the .dockerignore leaves out is not in the context at all, so it is "not found".
      if (!m || (m.rel !== '' && ignored(m))) throw notFound()
      out.push({ src, match: m, excludeRel: '' })
      continue
    }
    // BuildKit copies with AllowEmptyWildcard: a pattern may match nothing, but its literal
    // directory part must exist.
    if (missingParent) throw notFound()
    for (const m of matches) {
      if (ignored(m)) continue
      const exRel = base === '' ? m.written : m.written.slice(base.length + 1)
      out.push({ src, match: m, excludeRel: exRel })
    }
  }
  return out
}

function isWhiteoutDevice(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0
}

export interface PlanOptions {
  readonly owner: Owner
  readonly chmod?: number
  readonly mtime: number
  readonly exclude?: PatternMatcher
  readonly destWritten: string
  /** Whether the whole step places several items (then a file lands inside dest). @default found.length > 1 */
  readonly multi?: boolean
}

/** Adds the found sources to `set` with COPY's placement rules. */
export function placeSources(set: EntrySet, found: readonly Found[], root: SourceRoot, dest: Dest, opts: PlanOptions): void {
  if (found.length === 0) return
  const multi = opts.multi ?? found.length > 1
  if (multi && !dest.dirSyntax && !dest.existsDir) {
    throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `copying several sources needs a destination ending in '/', got ${opts.destWritten}`, { path: opts.destWritten, dest: opts.destWritten })
  }
  const eo: EntryOptions = { owner: opts.owner, mtime: opts.mtime, ...(opts.chmod !== undefined ? { chmod: opts.chmod } : {}) }
  for (const f of found) {
    const st = f.match.stat!
    if (st.isDirectory()) {
      addDestDirs(set, dest, opts.owner, opts.mtime, true, { mode: opts.chmod ?? st.mode & 0o7777 })
      addTree(set, {
        hostDir: f.match.host,
        rootRel: f.match.rel,
        dest: dest.path,
        ...(root.ignore ? { ignore: root.ignore } : {}),
        ...(root.skipWhiteouts ? { skipWhiteouts: true } : {}),
        ...(opts.exclude ? { exclude: opts.exclude, excludeRel: f.excludeRel } : {}),
      }, eo)
      continue
    }
    const name = posix.basename(`/${f.match.written}`)
    if (opts.exclude && opts.exclude.matches(f.excludeRel || name)) continue
    if (root.skipWhiteouts && isWhiteoutDevice(st)) continue
    const toDir = dest.dirSyntax || dest.existsDir || multi
    const target = toDir ? (dest.path ? `${dest.path}/${name}` : name) : dest.path
    if (target === '') throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `cannot copy file ${f.src} onto the image root`, { path: f.src })
    addDestDirs(set, dest, opts.owner, opts.mtime, toDir)
    const e = entryFromStat(target, f.match.host, st, eo)
    if (e) set.add(e)
  }
}

function chmodOf(spec: { readonly chmod?: string }): number | undefined {
  return spec.chmod === undefined ? undefined : parseInt(spec.chmod, 8)
}

function excludeOf(spec: { readonly exclude: readonly string[] }): PatternMatcher | undefined {
  return spec.exclude.length > 0 ? new PatternMatcher(spec.exclude) : undefined
}

/** Builds the entry set for context sources (shared with ADD's non-archive local files). */
export function planContext(ctx: ExecContext, sources: readonly string[], spec: CopySpec | AddSpec, dest: Dest, owner: Owner): EntrySet {
  if (sources.length > 1 && !dest.dirSyntax) {
    throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `with more than one source the destination must be a directory ending in '/', got ${spec.dest}`, { path: spec.dest, dest: spec.dest })
  }
  const ignorePatterns = loadDockerignore(ctx.contextDir)
  const root: SourceRoot = { root: ctx.contextDir, ...(ignorePatterns.length > 0 ? { ignore: new PatternMatcher(ignorePatterns) } : {}) }
  const set = new EntrySet()
  const exclude = excludeOf(spec)
  const chmod = chmodOf(spec)
  placeSources(set, findSources(sources, root), root, dest, {
    owner, mtime: ctx.epoch, destWritten: spec.dest,
    ...(exclude ? { exclude } : {}), ...(chmod !== undefined ? { chmod } : {}),
  })
  return set
}

export const copyExecutor: Executor<'copy'> = {
  kind: 'copy',
  async exec(vertex, inputs, ctx) {
    const spec = vertex.spec
    const parent = inputs[0]!
    const dest = await resolveDest(ctx, parent, spec.dest, spec.link)
    const owner = await resolveOwner(ctx, parent, spec.chown)
    const layerOpts = { compression: ctx.compression, ...(ctx.signal ? { signal: ctx.signal } : {}) }
    const base = { kind: 'copy', spec, workdir: dest.workdir, dest: dest.path, uid: owner.uid, gid: owner.gid, epoch: ctx.epoch, compression: ctx.compression }

    if (spec.fromInput) {
      const from = inputs[1]
      if (!from) throw new CopyError(ErrorCodes.INVALID_ARGUMENT, 'COPY --from has no source stage input', {})
      if (spec.sources.length > 1 && !dest.dirSyntax) {
        throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `with more than one source the destination must be a directory ending in '/', got ${spec.dest}`, { path: spec.dest, dest: spec.dest })
      }
      // The source stage's layers determine its files exactly (diffIDs are content digests), so
      // they stand in for the content key and the rootfs is only assembled on a cache miss.
      const destNodes = Object.fromEntries([...dest.nodes].map(([k, v]) => [k, v && { type: v.type, mode: v.mode, uid: v.uid, gid: v.gid }]))
      const key = digestOf({ ...base, from: from.config.rootfs.diff_ids, destNodes })
      const { layer, cached } = await cachedLayer(ctx, key, () =>
        withRootfs(ctx.store, from.layers, ctx.signal ? { signal: ctx.signal } : {}, async (dir) => {
          const root: SourceRoot = { root: dir, skipWhiteouts: true }
          const set = new EntrySet()
          const exclude = excludeOf(spec)
          const chmod = chmodOf(spec)
          placeSources(set, findSources(spec.sources, root), root, dest, {
            owner, mtime: ctx.epoch, destWritten: spec.dest,
            ...(exclude ? { exclude } : {}), ...(chmod !== undefined ? { chmod } : {}),
          })
          return writeLayer(set.finalize(), ctx.store.blobs, layerOpts)
        }))
      return { state: withLayer(parent, ctx, layer, createdBy('COPY', spec)), cached }
    }

    const entries: LayerEntry[] = planContext(ctx, spec.sources, spec, dest, owner).finalize()
    const stats = await StatCache.open(join(ctx.store.root, 'statcache'), ctx.contextDir)
    const key = digestOf({ ...base, content: contentKey(entries, stats) })
    await stats.save()
    const { layer, cached } = await cachedLayer(ctx, key, () => writeLayer(entries, ctx.store.blobs, layerOpts))
    return { state: withLayer(parent, ctx, layer, createdBy('COPY', spec)), cached }
  },
}
