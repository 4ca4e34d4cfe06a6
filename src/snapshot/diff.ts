/**
 * Turns what a RUN step changed into layer entries.
 *
 * With overlayfs the change set is the upper dir: added and changed files are there whole, a
 * deleted lower file is a 0/0 char device (→ `.wh.<name>`), and a directory that replaced a lower
 * one carries `trusted.overlay.opaque=y` (`user.overlay.opaque` in a rootless build, overlay.ts) (→ `.wh..wh..opq`). The same entry shape comes out of the
 * walk-based diff of the copy fallback (copy-fallback.ts), so both paths write the same layer.
 *
 * Extended attributes are read in xattrs.ts; the runtime's mount points are taken out of the tree
 * before the diff by mount-stubs.ts.
 */
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs'
import { dirname, join } from 'node:path'
import { devMajor, devMinor } from '../layer/device-numbers.js'
import type { EntryBase, LayerEntry } from '../layer/entry.js'
import { pairHardlinks } from '../layer/hardlinks.js'
import { fsPath, nameFromBytes } from '../util/names.js'
import { sortEntries } from '../layer/write-layer.js'
import { KEEP_XATTR, readXattrs } from './xattrs.js'
import { opaqueXattr } from './overlay.js'

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
  /** In the string form of names.ts: bytes that are not UTF-8 are escaped, never lost. */
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
    const names = readdirSync(fsPath(rel ? join(root, rel) : root), { encoding: 'buffer' })
    for (const raw of names) {
      const name = nameFromBytes(raw)
      const r = rel ? `${rel}/${name}` : name
      const st = lstatSync(fsPath(join(root, r)))
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
 * The entry for a node that is not a whiteout, or undefined for a socket (not representable in a
 * layer, as in Docker). Registers every non-directory with more than one link in `inodes`, so that
 * {@link pairHardlinks} turns the later paths into hard links: files, symlinks, fifos and devices
 * alike, as BuildKit's differ (Go's archive/tar) does.
 */
export function nodeEntry(base: EntryBase, st: Stats, host: string, inodes: Map<LayerEntry, number>): LayerEntry | undefined {
  let e: LayerEntry
  if (st.isDirectory()) return { ...base, type: 'dir' }
  if (st.isFile()) e = { ...base, type: 'file', size: st.size, source: { path: host } }
  else if (st.isSymbolicLink()) e = { ...base, type: 'symlink', linkname: nameFromBytes(readlinkSync(fsPath(host), { encoding: 'buffer' })) }
  else if (st.isFIFO()) e = { ...base, type: 'fifo' }
  else if (st.isCharacterDevice() || st.isBlockDevice()) {
    e = { ...base, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev) }
  } else return undefined
  if (st.nlink > 1) inodes.set(e, st.ino)
  return e
}

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
  const opaqueName = opaqueXattr()
  for (const { rel, st } of nodes) {
    const base = { path: rel, mode: mode(st), uid: st.uid, gid: st.gid, mtime: secs(st), xattrs: kept(rel) }
    if (!base.xattrs) delete (base as Partial<typeof base>).xattrs
    if (st.isCharacterDevice() && st.rdev === 0) {
      const dir = dirname(rel)
      const name = rel.slice(dir === '.' ? 0 : dir.length + 1)
      // mode 0, root-owned, the parent's mtime: the same whiteout the walk-based diff writes.
      const parent = lstatSync(fsPath(dir === '.' ? upper : join(upper, dir)))
      entries.push({ path: dir === '.' ? `.wh.${name}` : `${dir}/.wh.${name}`, type: 'file', mode: 0, uid: 0, gid: 0, mtime: secs(parent), size: 0, source: { data: Buffer.alloc(0) } })
    } else {
      const e = nodeEntry(base, st, join(upper, rel), inodes)
      if (e) entries.push(e)
      if (st.isDirectory() && xattrs.get(rel)?.[opaqueName]?.toString() === 'y') {
        opaque.add(rel)
        entries.push({ path: `${rel}/.wh..wh..opq`, type: 'file', mode: 0, uid: 0, gid: 0, mtime: secs(st), size: 0, source: { data: Buffer.alloc(0) } })
      }
    }
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
    const upper = lstatSync(fsPath(join(root, d.path)))
    if (mode(lower) !== mode(upper) || lower.uid !== upper.uid || lower.gid !== upper.gid || !sameTime(lower.mtimeMs, upper.mtimeMs)) continue
    drop.add(d.path)
    const parent = dirname(d.path)
    if (parent !== '.') childCount.set(parent, (childCount.get(parent) ?? 1) - 1)
  }
  return drop.size === 0 ? entries : entries.filter((e) => !drop.has(e.path))
}

/** utimes() takes seconds as a double (~0.25 µs apart at today's dates): compare to 10 µs. */
export function sameTime(aMs: number, bMs: number): boolean {
  return Math.abs(aMs - bMs) < 0.01
}
