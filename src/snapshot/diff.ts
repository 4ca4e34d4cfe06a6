/**
 * Turns what a RUN step changed into layer entries.
 *
 * With overlayfs the change set is the upper dir: added and changed files are there whole, a
 * deleted lower file is a 0/0 char device (→ `.wh.<name>`), and a directory that replaced a lower
 * one carries `trusted.overlay.opaque=y` (→ `.wh..wh..opq`). The same entry shape comes out of the
 * walk-based diff of the copy fallback (copy-fallback.ts), so both paths write the same layer.
 *
 * Extended attributes are read in xattrs.ts; the runtime's mount points are taken out of the tree
 * before the diff by mount-stubs.ts.
 */
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs'
import { dirname, join } from 'node:path'
import type { LayerEntry } from '../layer/entry.js'
import { sortEntries } from '../layer/write-layer.js'
import { KEEP_XATTR, readXattrs } from './xattrs.js'

/** Subtrees never taken into a layer: the runtime mounts its own filesystems there. */
export const EXCLUDED_SUBTREES: readonly string[] = Object.freeze(['proc', 'sys', 'dev'])

export interface DiffOptions {
  /** Clamp mtimes to at most this (seconds since the epoch): BuildKit's rewrite-timestamp. */
  readonly clampMtime?: number
  /**
   * Looks a path (relative, no leading '/') up in the image below the step. Used to leave out a
   * directory that has no changes under it and the same metadata as before (it was only copied up).
   */
  readonly lowerStat?: (rel: string) => Stats | undefined
  /** Relative paths whose subtree is left out. @default {@link EXCLUDED_SUBTREES} */
  readonly exclude?: readonly string[]
}

interface Node {
  readonly rel: string
  readonly st: Stats
}

/** Walks `root` (sync: a few µs per entry; limits.md) and returns every entry below it, parents first. */
export function walkTree(root: string, exclude: readonly string[]): Node[] {
  const out: Node[] = []
  const skip = new Set(exclude)
  const stack: string[] = ['']
  while (stack.length > 0) {
    const rel = stack.pop()!
    const names = readdirSync(rel ? join(root, rel) : root)
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name
      const st = lstatSync(join(root, r))
      if (skip.has(r)) {
        out.push({ rel: r, st }) // the mount point itself; its contents never
        continue
      }
      out.push({ rel: r, st })
      if (st.isDirectory()) stack.push(r)
    }
  }
  return out
}

const mode = (st: Stats) => st.mode & 0o7777

/**
 * The layer entries for the overlay upper dir `upper`: sorted, hard links paired, whiteouts and
 * opaque markers in OCI form, runtime mount points left out.
 */
export async function diffUpper(upper: string, opts: DiffOptions = {}): Promise<LayerEntry[]> {
  const exclude = opts.exclude ?? EXCLUDED_SUBTREES
  const nodes = walkTree(upper, exclude)
  if (nodes.length === 0) return []
  const xattrs = await readXattrs(upper)
  const clamp = (t: number) => (opts.clampMtime !== undefined ? Math.min(t, opts.clampMtime) : t)
  const secs = (st: Stats) => clamp(Math.floor(st.mtimeMs / 1000))
  const kept = (rel: string): Record<string, Buffer> | undefined => {
    const x = xattrs.get(rel)
    if (!x) return undefined
    const out: Record<string, Buffer> = {}
    for (const [k, v] of Object.entries(x)) if (KEEP_XATTR.test(k)) out[k] = v
    return Object.keys(out).length > 0 ? out : undefined
  }

  const entries: LayerEntry[] = []
  const inodes = new Map<LayerEntry, number>()
  const opaque = new Set<string>()
  for (const { rel, st } of nodes) {
    const base = { path: rel, mode: mode(st), uid: st.uid, gid: st.gid, mtime: secs(st), xattrs: kept(rel) }
    if (!base.xattrs) delete (base as Partial<typeof base>).xattrs
    if (st.isCharacterDevice() && st.rdev === 0) {
      const dir = dirname(rel)
      const name = rel.slice(dir === '.' ? 0 : dir.length + 1)
      // mode 0, root-owned, the parent's mtime: the same whiteout the walk-based diff writes.
      const parent = lstatSync(dir === '.' ? upper : join(upper, dir))
      entries.push({ path: dir === '.' ? `.wh.${name}` : `${dir}/.wh.${name}`, type: 'file', mode: 0, uid: 0, gid: 0, mtime: secs(parent), size: 0, source: { data: Buffer.alloc(0) } })
    } else if (st.isDirectory()) {
      entries.push({ ...base, type: 'dir' })
      if (xattrs.get(rel)?.['trusted.overlay.opaque']?.toString() === 'y') {
        opaque.add(rel)
        entries.push({ path: `${rel}/.wh..wh..opq`, type: 'file', mode: 0, uid: 0, gid: 0, mtime: secs(st), size: 0, source: { data: Buffer.alloc(0) } })
      }
    } else if (st.isFile()) {
      const e: LayerEntry = { ...base, type: 'file', size: st.size, source: { path: join(upper, rel) } }
      if (st.nlink > 1) inodes.set(e, st.ino)
      entries.push(e)
    } else if (st.isSymbolicLink()) {
      entries.push({ ...base, type: 'symlink', linkname: readlinkSync(join(upper, rel)) })
    } else if (st.isFIFO()) {
      entries.push({ ...base, type: 'fifo' })
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      entries.push({ ...base, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: major(st.rdev), devminor: minor(st.rdev) })
    }
    // sockets: not representable in a layer (as in Docker)
  }
  const pruned = opts.lowerStat ? pruneUnchangedDirs(entries, opaque, upper, opts.lowerStat) : entries
  return pairHardlinks(sortEntries(pruned), inodes)
}

/**
 * Drops directories that only exist in the upper dir because something below them was touched and
 * then undone (or a mount point was made and removed): no entries under them, same mode, owner and
 * mtime as in the image below.
 */
function pruneUnchangedDirs(entries: LayerEntry[], opaque: Set<string>, root: string, lowerStat: (rel: string) => Stats | undefined): LayerEntry[] {
  const hasChild = new Set<string>()
  for (const e of entries) {
    const d = dirname(e.path)
    if (d !== '.') hasChild.add(d)
  }
  // Deepest first, so that a parent whose only child was dropped can be dropped too.
  const dirs = entries.filter((e) => e.type === 'dir').sort((a, b) => b.path.split('/').length - a.path.split('/').length)
  const drop = new Set<string>()
  const childCount = new Map<string, number>()
  for (const e of entries) {
    const d = dirname(e.path)
    if (d !== '.') childCount.set(d, (childCount.get(d) ?? 0) + 1)
  }
  for (const d of dirs) {
    if (opaque.has(d.path) || (childCount.get(d.path) ?? 0) > 0) continue
    const lower = lowerStat(d.path)
    if (!lower || !lower.isDirectory()) continue
    const upper = lstatSync(join(root, d.path))
    if (mode(lower) !== mode(upper) || lower.uid !== upper.uid || lower.gid !== upper.gid || !sameTime(lower.mtimeMs, upper.mtimeMs)) continue
    drop.add(d.path)
    const parent = dirname(d.path)
    if (parent !== '.') childCount.set(parent, (childCount.get(parent) ?? 1) - 1)
  }
  return drop.size === 0 ? entries : entries.filter((e) => !drop.has(e.path))
}

/** In sorted order, the first path of each hard-link group is the file, the others link to it. */
export function pairHardlinks(sorted: LayerEntry[], inodes: Map<LayerEntry, number>): LayerEntry[] {
  if (inodes.size === 0) return sorted
  const first = new Map<number, string>()
  return sorted.map((e) => {
    const ino = inodes.get(e)
    if (ino === undefined) return e
    const target = first.get(ino)
    if (target === undefined) {
      first.set(ino, e.path)
      return e
    }
    const { path, mode: m, uid, gid, mtime, xattrs } = e
    return { path, mode: m, uid, gid, mtime, ...(xattrs ? { xattrs } : {}), type: 'hardlink', linkname: target } as LayerEntry
  })
}

/** utimes() takes seconds as a double (~0.25 µs apart at today's dates): compare to 10 µs. */
export function sameTime(aMs: number, bMs: number): boolean {
  return Math.abs(aMs - bMs) < 0.01
}

function major(dev: number): number {
  return ((dev >> 8) & 0xfff) | ((dev >>> 32) & ~0xfff)
}

function minor(dev: number): number {
  return (dev & 0xff) | ((dev >> 12) & 0xfff00)
}
