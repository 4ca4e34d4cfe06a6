/**
 * Writes a snapshot dir straight from the entry list a layer was just written from, so a RUN on top
 * of a fresh COPY layer does not gunzip and untar the layer it was made from a moment ago. Files are
 * copied (never hard-linked: a snapshot must not share inodes with the build context, whose files
 * the user keeps editing, and chown/chmod here would change them).
 *
 * Only plain trees are written this way (files, dirs, symlinks, hard links, no xattrs): anything
 * else throws {@link NotPrewritable} and the caller unpacks the blob as before.
 */
import { chmodSync, copyFileSync, fstatSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, closeSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { throwIfAborted } from '../errors.js'
import type { LayerEntry } from '../layer/entry.js'
import { fsPath } from '../util/names.js'

export class NotPrewritable extends Error {}

/** True when every entry is of a kind {@link writeEntries} reproduces exactly. */
export function prewritable(entries: readonly LayerEntry[]): boolean {
  return entries.every((e) => (e.type === 'file' || e.type === 'dir' || e.type === 'symlink' || e.type === 'hardlink') && !e.xattrs && !e.path.split('/').some((n) => n.startsWith('.wh.')))
}

/**
 * Writes `entries` (parents before children, as {@link sortEntries} orders them) under `dest` with
 * their modes, owners and mtimes. A context file whose size no longer matches its entry was edited
 * after the layer was written: the snapshot would not match the layer, so it throws.
 */
export function writeEntries(entries: readonly LayerEntry[], dest: string, signal?: AbortSignal): void {
  if (!prewritable(entries)) throw new NotPrewritable('entries need a real unpack')
  const dirs: LayerEntry[] = []
  let n = 0
  for (const e of entries) {
    if ((++n & 255) === 0) throwIfAborted(signal)
    const p = fsPath(join(dest, e.path))
    switch (e.type) {
      case 'dir':
        mkdirSync(p, { recursive: true })
        lchownSync(p, e.uid, e.gid)
        chmodSync(p, e.mode)
        dirs.push(e)
        break
      case 'file': {
        if ('data' in e.source) writeFileSync(p, e.source.data)
        else copyFileSync(fsPath(e.source.path), p)
        const fd = openSync(p, 'r')
        try {
          if (fstatSync(fd).size !== e.size) throw new NotPrewritable(`${e.path} changed while its layer was written`)
        } finally {
          closeSync(fd)
        }
        lchownSync(p, e.uid, e.gid)
        chmodSync(p, e.mode) // after chown, which clears setuid/setgid
        utimesSync(p, e.mtime, e.mtime)
        break
      }
      case 'symlink':
        symlinkSync(e.linkname, p)
        lchownSync(p, e.uid, e.gid)
        lutimesSync(p, e.mtime, e.mtime)
        break
      case 'hardlink':
        linkSync(fsPath(join(dest, e.linkname)), p)
        break
      default:
        throw new NotPrewritable(`${e.type} entries need a real unpack`)
    }
  }
  // Directory mtimes last, deepest first: writing their children moved them.
  for (const d of dirs.reverse()) utimesSync(fsPath(join(dest, d.path)), d.mtime, d.mtime)
}
