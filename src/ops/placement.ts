/**
 * Where COPY, ADD and WORKDIR put things: the destination resolved against the image (following
 * its symlinks), the directories above it, and the sources expanded, checked and placed with
 * Docker/BuildKit's rules.
 */
import { existsSync, lstatSync, readdirSync, type Stats } from 'node:fs'
import { posix } from 'node:path'
import { CopyError, ErrorCodes } from '../errors.js'
import type { DirEntry } from '../layer/entry.js'
import type { ExecContext, ImageState } from '../solver/types.js'
import { addTree, ancestors, entersExcludedDir, entryFromStat, EntrySet, type EntryOptions, type Owner } from '../context/collect.js'
import type { PatternMatcher } from '../context/dockerignore.js'
import { expandGlob, goClean, hasMeta, type GlobMatch } from '../context/glob.js'
import { resolveImagePath, type ImageNode } from './image-file.js'

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
  /** How a missing source's message names where it was looked for: `the build context /src/app`. @default none */
  readonly label?: string
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
    const notFound = (): CopyError => sourceNotFound(src, rel, root)
    // An ignored directory is still in the context when the context walk enters it for a `!`
    // pattern (entersExcludedDir); the walk then takes only what that re-includes.
    const ignored = (m: GlobMatch): boolean =>
      root.ignore !== undefined &&
      !(m.stat?.isDirectory() && entersExcludedDir(root.ignore, m.rel)) &&
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

/**
 * COPY_SOURCE_NOT_FOUND naming where it looked (`details.root`), and a close match in the source's
 * directory when there is one (`details.suggestion`): a name differing in case or by a typo or
 * two, or the name the `.dockerignore` left out.
 */
function sourceNotFound(src: string, rel: string, root: SourceRoot): CopyError {
  const suggestion = closeMatch(rel, root)
  const where = root.label ? ` in ${root.label}` : ''
  const hint = suggestion === undefined ? '' : suggestion.ignored ? ` (${suggestion.name} is excluded by .dockerignore)` : ` (did you mean ${suggestion.name}?)`
  return new CopyError(ErrorCodes.COPY_SOURCE_NOT_FOUND, `source ${src} not found${where}${hint}`, {
    path: src,
    ...(root.label ? { root: root.root } : {}),
    ...(suggestion ? { suggestion: suggestion.name, ...(suggestion.ignored ? { ignored: true } : {}) } : {}),
  })
}

/** At most this many entries of a directory are compared (a stranger's context may hold millions). */
const SUGGEST_SCAN_LIMIT = 10_000

function closeMatch(rel: string, root: SourceRoot): { name: string; ignored: boolean } | undefined {
  if (rel === '' || hasMeta(rel)) return undefined
  const slash = rel.lastIndexOf('/')
  const dir = slash < 0 ? '' : rel.slice(0, slash)
  const base = rel.slice(slash + 1)
  const join2 = (n: string) => (dir === '' ? n : `${dir}/${n}`)
  // The source itself may exist and be left out by the .dockerignore.
  if (root.ignore?.matches(rel) && existsSync(`${root.root}/${rel}`)) return { name: rel, ignored: true }
  let names: string[]
  try {
    names = readdirSync(dir === '' ? root.root : `${root.root}/${dir}`).slice(0, SUGGEST_SCAN_LIMIT)
  } catch {
    return undefined
  }
  let best: { name: string; d: number } | undefined
  const max = Math.max(1, Math.min(2, Math.floor(base.length / 3)))
  for (const n of names) {
    if (root.ignore?.matches(join2(n))) continue
    const d = n.toLowerCase() === base.toLowerCase() ? 0 : editDistance(n, base, max)
    if (d <= max && (!best || d < best.d)) best = { name: join2(n), d }
  }
  return best ? { name: best.name, ignored: false } : undefined
}

/** Levenshtein distance, stopping early once it exceeds `max` (names are short; bounded anyway). */
function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max || a.length > 255 || b.length > 255) return max + 1
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      cur.push(v)
      if (v < rowMin) rowMin = v
    }
    if (rowMin > max) return max + 1
    prev = cur
  }
  return prev[b.length]!
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
  /**
   * Whether the step names several sources (as written, before globs are expanded): then a file
   * lands inside dest. @default false
   */
  readonly multi?: boolean
  /** `COPY --parents`: each source keeps its path (after a `/./` pivot, if any) below dest. */
  readonly parents?: boolean
}

/** Adds the found sources to `set` with COPY's placement rules. */
export function placeSources(set: EntrySet, found: readonly Found[], root: SourceRoot, dest: Dest, opts: PlanOptions): void {
  if (found.length === 0) return
  if (opts.parents) return placeWithParents(set, found, root, dest, opts)
  const multi = opts.multi ?? false
  const eo: EntryOptions = { owner: opts.owner, mtime: opts.mtime, ...(opts.chmod !== undefined ? { chmod: opts.chmod } : {}) }
  // The matches of one glob are copied one after another, as BuildKit's file op does (the trailing
  // '/' rule counts the sources as written): a file goes inside dest once dest is a directory (in
  // the image, written with '/', or made by an earlier match of this step), else it becomes dest,
  // a later file replacing an earlier one.
  for (const f of found) {
    const st = f.match.stat!
    const placed = set.get(dest.path)
    if (st.isDirectory()) {
      if (placed !== undefined && placed.type !== 'dir') {
        throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `cannot copy directory ${f.match.written || f.src} to ${opts.destWritten}: an earlier match of ${f.src} made it a file`, { path: f.src, dest: opts.destWritten })
      }
      // A destination the copy creates is made 0755 (the --chmod mode with it), never with the
      // source directory's mode: fsutil's prepareTargetDir MkdirAll's it and copies only the
      // contents' metadata. Directories inside keep their own modes.
      addDestDirs(set, dest, opts.owner, opts.mtime, true, opts.chmod !== undefined ? { mode: opts.chmod } : undefined)
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
    const toDir = dest.dirSyntax || dest.existsDir || multi || placed?.type === 'dir'
    const target = toDir ? (dest.path ? `${dest.path}/${name}` : name) : dest.path
    if (target === '') throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `cannot copy file ${f.src} onto the image root`, { path: f.src })
    addDestDirs(set, dest, opts.owner, opts.mtime, toDir)
    const e = entryFromStat(target, f.match.host, st, eo)
    if (e) set.add(e)
  }
}

/**
 * `COPY --parents` as BuildKit's dockerfile_parents_test.go specifies it: `a/b/c` lands at
 * `<dest>/a/b/c`; with a pivot (`a/./b/c`, the first one counts) only the part after it is kept; the
 * directories on the way are copied with their own modes (and the step's owner), dest is a directory.
 */
function placeWithParents(set: EntrySet, found: readonly Found[], root: SourceRoot, dest: Dest, opts: PlanOptions): void {
  const eo: EntryOptions = { owner: opts.owner, mtime: opts.mtime, ...(opts.chmod !== undefined ? { chmod: opts.chmod } : {}) }
  const dirOpts: EntryOptions = { owner: opts.owner, mtime: opts.mtime }
  addDestDirs(set, dest, opts.owner, opts.mtime, true)
  for (const f of found) {
    const parts = f.match.written.split('/').filter((p) => p !== '' && p !== '.')
    const pivot = f.src.indexOf('/./')
    const skip = pivot > 0 ? goClean(f.src.slice(0, pivot)).split('/').filter((p) => p !== '' && p !== '.').length : 0
    const kept = parts.slice(skip)
    if (kept.length === 0) throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `--parents source ${f.src} keeps no path below its pivot`, { path: f.src })
    const at = (n: number) => [dest.path, ...kept.slice(0, n)].filter((p) => p !== '').join('/')
    const st = f.match.stat!
    // The kept parents (and a kept directory itself) come from the source tree.
    const dirs = st.isDirectory() ? kept.length : kept.length - 1
    for (let i = 1; i <= dirs; i++) {
      const host = posix.join(root.root, ...parts.slice(0, skip + i))
      const e = entryFromStat(at(i), host, lstatSync(host), i === kept.length && opts.chmod !== undefined ? eo : dirOpts)
      if (e && e.type === 'dir') set.addDirIfAbsent(e)
    }
    if (st.isDirectory()) {
      addTree(set, {
        hostDir: f.match.host,
        rootRel: f.match.rel,
        dest: at(kept.length),
        ...(root.ignore ? { ignore: root.ignore } : {}),
        ...(root.skipWhiteouts ? { skipWhiteouts: true } : {}),
        ...(opts.exclude ? { exclude: opts.exclude, excludeRel: f.excludeRel } : {}),
      }, eo)
      continue
    }
    if (opts.exclude && opts.exclude.matches(f.excludeRel || kept[kept.length - 1]!)) continue
    if (root.skipWhiteouts && isWhiteoutDevice(st)) continue
    const e = entryFromStat(at(kept.length), f.match.host, st, eo)
    if (e) set.add(e)
  }
}
