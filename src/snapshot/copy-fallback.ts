/**
 * The fallback for hosts where overlayfs cannot be mounted (no overlay module, a backing filesystem
 * overlay refuses): the rootfs is a private copy of the merged layers, and the step's changes are
 * found by walking it before and after the run. The entries come out in the same shape as
 * {@link diffUpper}'s, so the layer is the same.
 *
 * A file counts as changed when its inode, type or ctime moved (every write and every metadata
 * change moves ctime); a directory when its mode, owner or mtime changed, or when it is not the
 * directory that was at that path before (deleted and made again → opaque, as overlay marks it).
 *
 * "Not the same directory" cannot be told by inode number: a filesystem hands a freed inode out
 * again (ext4 at once), so `rm -rf /tree && mkdir /tree` often gets the old number back, and the
 * layer then depended on what the host did before. Before the run every directory gets the xattr
 * {@link DIR_MARK} = its own path. trusted.* needs CAP_SYS_ADMIN to read or write, which the
 * container does not have (Docker's default capabilities, which RUN uses), so a directory made in
 * the step never carries a mark and a moved one carries its old path: a directory is the same
 * exactly when its mark is its path. Where the filesystem takes no trusted.* xattrs (the root has
 * no mark after the run) the inode number is all there is, and is used.
 */
import { execFile } from 'node:child_process'
import { lstatSync, readlinkSync, type Stats } from 'node:fs'
import { rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import type { LayerEntry } from '../layer/entry.js'
import { pairHardlinks } from '../layer/hardlinks.js'
import { fsPath, nameBytes } from '../util/names.js'
import { sortEntries } from '../layer/write-layer.js'
import { EXCLUDED_SUBTREES, nodeEntry, sameTime, walkTree, type DiffOptions } from './diff.js'
import { xargs } from './xargs.js'
import { KEEP_XATTR, readXattrs, writeXattrs } from './xattrs.js'

/** Marks each directory of the copied rootfs with its own path ('/' + rel) before the run. */
export const DIR_MARK = 'trusted.imagesmith.dir'

const execFileP = promisify(execFile)

/** Copies the snapshot dirs (bottom first) into `dest`, applying their whiteouts and opaque dirs. */
export async function copyRootfs(snapshotDirs: readonly string[], dest: string): Promise<void> {
  for (const snap of snapshotDirs) {
    const whiteouts: string[] = []
    for (const { rel, st } of walkTree(snap, [])) if (st.isCharacterDevice() && st.rdev === 0) whiteouts.push(rel)
    const opaque: string[] = []
    for (const [rel, x] of await readXattrs(snap)) if (x['trusted.overlay.opaque']?.toString() === 'y') opaque.push(rel)
    for (const rel of [...opaque, ...whiteouts]) if (rel !== '') await rm(fsPath(join(dest, rel)), { recursive: true, force: true })
    await execFileP('cp', ['-a', `${snap}/.`, `${dest}/`])
    for (const rel of whiteouts) await rm(fsPath(join(dest, rel)), { force: true })
    if (opaque.length > 0) {
      await xargs(['setfattr', '-x', 'trusted.overlay.opaque', '--'], opaque.map((r) => join(dest, r))).catch(() => undefined)
    }
  }
}

/**
 * The state of `root` before the run: path → stats. Marks every directory with {@link DIR_MARK}
 * on the way (see the top of this file).
 */
export async function treeState(root: string, exclude: readonly string[] = EXCLUDED_SUBTREES): Promise<Map<string, Stats>> {
  const nodes = walkTree(root, exclude)
  const marks: [string, string, Buffer][] = [[root, DIR_MARK, markOf('')]]
  for (const n of nodes) if (n.st.isDirectory()) marks.push([join(root, n.rel), DIR_MARK, markOf(n.rel)])
  // Unsupported (no trusted.* on this filesystem): the root stays unmarked and diffWalk knows.
  await writeXattrs(marks).catch(() => undefined)
  return new Map(nodes.map((n) => [n.rel, n.st]))
}

const markOf = (rel: string) => nameBytes(`/${rel}`)

const typeOf = (st: Stats) => st.mode & 0o170000

function fileChanged(a: Stats, b: Stats): boolean {
  return a.ino !== b.ino || typeOf(a) !== typeOf(b) || !sameTime(a.ctimeMs, b.ctimeMs) || a.size !== b.size || !sameTime(a.mtimeMs, b.mtimeMs)
}

function dirChanged(a: Stats, b: Stats): boolean {
  return (a.mode & 0o7777) !== (b.mode & 0o7777) || a.uid !== b.uid || a.gid !== b.gid || !sameTime(a.mtimeMs, b.mtimeMs)
}

/** Layer entries for what changed in `root` since `before` was taken. */
export async function diffWalk(root: string, before: ReadonlyMap<string, Stats>, opts: DiffOptions = {}): Promise<LayerEntry[]> {
  const exclude = opts.exclude ?? EXCLUDED_SUBTREES
  const after = new Map(walkTree(root, exclude).map((n) => [n.rel, n.st]))
  const clamp = (t: number) => (opts.clampMtime !== undefined ? Math.min(t, opts.clampMtime) : t)
  const secs = (st: Stats) => clamp(Math.floor(st.mtimeMs / 1000))
  const excluded = new Set(exclude)

  const xattrs = await readXattrs(root)
  const marked = xattrs.get('')?.[DIR_MARK]?.equals(markOf('')) === true
  const sameDir = (rel: string, st: Stats, old: Stats) => (marked ? xattrs.get(rel)?.[DIR_MARK]?.equals(markOf(rel)) === true : st.ino === old.ino)

  const replaced = new Set<string>() // dirs made again: everything under them is new
  const emit = new Set<string>()
  const under = (rel: string, set: Set<string>) => {
    for (let d = dirname(rel); d !== '.'; d = dirname(d)) if (set.has(d)) return true
    return false
  }
  // A mount point itself is taken like any directory (as diffUpper takes it): one the runtime made
  // stays in the layer, as in buildah's and docker 20.10's. Its contents never are (walkTree).
  for (const [rel, st] of after) {
    const old = before.get(rel)
    if (!old) emit.add(rel)
    else if (st.isDirectory() && old.isDirectory()) {
      if (!sameDir(rel, st, old)) {
        replaced.add(rel)
        emit.add(rel)
      } else if (dirChanged(old, st)) emit.add(rel)
    } else if (fileChanged(old, st)) emit.add(rel)
  }
  for (const rel of [...after.keys()]) if (!emit.has(rel) && under(rel, replaced)) emit.add(rel)

  const deleted: string[] = []
  for (const rel of before.keys()) {
    if (after.has(rel) || excluded.has(rel)) continue
    const parent = dirname(rel)
    const parentGone = parent !== '.' && (!after.get(parent)?.isDirectory() || (before.has(parent) && !after.has(parent)))
    if (parentGone || under(rel, replaced)) continue
    // Only the topmost deleted path needs a whiteout (a deleted dir hides its whole subtree).
    if (parent !== '.' && !after.has(parent)) continue
    deleted.push(rel)
  }
  // Parent dirs of every change are in the layer, as overlay's copy-up puts them in the upper dir.
  for (const rel of [...emit, ...deleted]) {
    for (let d = dirname(rel); d !== '.'; d = dirname(d)) {
      if (emit.has(d)) break
      emit.add(d)
    }
  }

  const kept = (rel: string) => {
    const x = xattrs.get(rel)
    if (!x) return undefined
    const out: Record<string, Buffer> = {}
    for (const [k, v] of Object.entries(x)) if (KEEP_XATTR.test(k)) out[k] = v
    return Object.keys(out).length > 0 ? out : undefined
  }
  const entries: LayerEntry[] = []
  const inodes = new Map<LayerEntry, number>()
  for (const rel of emit) {
    const st = after.get(rel)!
    const x = kept(rel)
    const base = { path: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: secs(st), ...(x ? { xattrs: x } : {}) }
    const e = nodeEntry(base, st, join(root, rel), inodes)
    if (e) entries.push(e)
    if (st.isDirectory() && replaced.has(rel)) entries.push({ path: `${rel}/.wh..wh..opq`, type: 'file', mode: 0, uid: 0, gid: 0, mtime: secs(st), size: 0, source: { data: Buffer.alloc(0) } })
  }
  for (const rel of deleted) {
    const parent = dirname(rel)
    const name = rel.slice(parent === '.' ? 0 : parent.length + 1)
    const pst = parent === '.' ? lstatSync(fsPath(root)) : after.get(parent)!
    entries.push({ path: parent === '.' ? `.wh.${name}` : `${parent}/.wh.${name}`, type: 'file', mode: 0, uid: 0, gid: 0, mtime: secs(pst), size: 0, source: { data: Buffer.alloc(0) } })
  }
  return pairHardlinks(sortEntries(entries), inodes)
}
