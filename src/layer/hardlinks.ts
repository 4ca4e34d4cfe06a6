/**
 * Hard links in a layer: the first path of a group (in layer order) keeps its entry and the others
 * become hard links to it. Any type but a directory can be linked; the link's header keeps the
 * linked entry's file-type bits and device numbers, as Go's archive/tar writes it for BuildKit.
 */
import type { LayerEntry } from './entry.js'

/** `e` as a hard link to `target`, keeping what Go's archive/tar keeps in a link's header. */
export function hardlinkTo(e: LayerEntry, target: string): LayerEntry {
  const { path, mode, uid, gid, mtime, xattrs } = e
  const dev = e.type === 'char' || e.type === 'block' ? { devmajor: e.devmajor, devminor: e.devminor } : {}
  const targetType = e.type === 'hardlink' || e.type === 'dir' ? undefined : e.type
  return { path, mode, uid, gid, mtime, ...(xattrs ? { xattrs } : {}), type: 'hardlink', linkname: target, ...(targetType && targetType !== 'file' ? { targetType } : {}), ...dev }
}

/** In sorted order, the first path of each hard-link group keeps its entry, the others link to it. */
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
    return hardlinkTo(e, target)
  })
}
