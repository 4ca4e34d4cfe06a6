/**
 * Writes a snapshot dir in the same pass that writes a layer: the layer writer hands every entry and
 * every file byte it reads to a {@link SnapshotTee} (an {@link EntryTee}), so a RUN on top of a fresh
 * COPY layer neither gunzips and untars that layer nor reads the context files a second time. The
 * snapshot holds exactly the bytes the tar holds, even if a context file is edited meanwhile.
 *
 * Files are written, never hard-linked to the context: a snapshot must not share inodes with files
 * the user keeps editing, and chown/chmod here would change them.
 *
 * Only plain trees are written this way (files, dirs, symlinks, hard links, no xattrs, no whiteout
 * names): for anything else, or on any write error, the tee gives up quietly ({@link SnapshotTee.ok}
 * turns false), the layer is still written, and a later step unpacks the blob as before.
 */
import {
  chmodSync, closeSync, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, statSync, symlinkSync,
  utimesSync, writeSync,
  type PathLike,
} from 'node:fs'
import { join, posix } from 'node:path'
import type { EntryTee, LayerEntry } from '../layer/entry.js'
import { fsPath } from '../util/names.js'
import { LinkWorker } from './link-worker.js'
import { CreateStaging } from '../host/create-staging.js'

/** True when every entry is of a kind {@link SnapshotTee} reproduces exactly. */
export function prewritable(entries: readonly LayerEntry[]): boolean {
  return entries.every(writable)
}

function writable(e: LayerEntry): boolean {
  // The split only for a path that holds `.wh.` at all (10k splits were 5 ms of a rebuild's COPY).
  return (e.type === 'file' || e.type === 'dir' || e.type === 'symlink' || e.type === 'hardlink') && !e.xattrs && (!e.path.includes('.wh.') || !e.path.split('/').some((n) => n.startsWith('.wh.')))
}

/**
 * A snapshot of an earlier build of the same step whose unchanged files may be hard-linked instead
 * of written: snapshots are read-only lower dirs, so two of them can share a file's inode (never
 * with the context). `same` says which entries are unchanged since that build (same source content
 * and metadata at the same image path); the file there must also still match the entry's type,
 * size, mode, owner and mtime.
 */
export interface SnapshotReuse {
  readonly dir: string
  readonly same: (entry: LayerEntry) => boolean
}

/**
 * Writes the entries it is handed under `dest` with their modes, owners and mtimes. Entries come
 * parents first (as {@link sortEntries} orders them); directory mtimes are set by {@link finish},
 * after their children were written.
 */
export class SnapshotTee implements EntryTee {
  readonly #dest: string
  readonly #dirs: LayerEntry[] = []
  /** Who a new node belongs to without a chown: this process, unless its dir is setgid. */
  readonly #uid = process.geteuid?.() ?? -1
  readonly #gid = process.getegid?.() ?? -1
  /** Dirs (entry paths, '' = `dest`) known to have no setgid bit: nodes made in them get our gid. */
  readonly #plainDirs = new Set<string>()
  readonly #reuse: SnapshotReuse | undefined
  #fd: number | undefined
  #failed: unknown
  /** Makes the hard links from the previous snapshot (link-worker.ts), once there is one to make. */
  #links: LinkWorker | undefined
  /** Where new files are made: in place, or in a staging dir while creates in place are slow. */
  readonly #creates: CreateStaging
  /** The file being written when it was made in staging: where it is, where it goes. */
  #staged: readonly [string, PathLike] | undefined

  /**
   * `staging`: where files are made while creating them in place is slow (host/create-staging.ts);
   * without it, always in place.
   */
  constructor(dest: string, opts: { readonly reuse?: SnapshotReuse; readonly staging?: CreateStaging } = {}) {
    this.#dest = dest
    this.#reuse = opts.reuse
    this.#creates = opts.staging ?? new CreateStaging(undefined)
    if ((statSync(dest).mode & 0o2000) === 0) this.#plainDirs.add('')
  }

  /** Whether `e` needs a chown after it was made (skipped for the common root:root tree: one syscall less per file). */
  #foreign(e: LayerEntry): boolean {
    const parent = posix.dirname(e.path)
    return e.uid !== this.#uid || e.gid !== this.#gid || !this.#plainDirs.has(parent === '.' ? '' : parent)
  }

  /** False once an entry could not be written: the dir then is no snapshot of the layer. */
  get ok(): boolean {
    return this.#failed === undefined
  }

  /** Why the tee gave up, when it did. */
  get error(): unknown {
    return this.#failed
  }

  begin(e: LayerEntry): void {
    if (this.#failed !== undefined) return
    try {
      if (!writable(e)) throw new Error(`${e.path}: ${e.type} entries (or xattrs, whiteout names) need a real unpack`)
      const p = fsPath(join(this.#dest, e.path))
      switch (e.type) {
        case 'dir':
          mkdirSync(p, { recursive: true })
          if (this.#foreign(e)) lchownSync(p, e.uid, e.gid)
          chmodSync(p, e.mode)
          if ((e.mode & 0o2000) === 0) this.#plainDirs.add(e.path)
          this.#dirs.push(e)
          break
        case 'file':
          if (this.#linkPrevious(e, p)) break
          {
            const made = this.#creates.create(p)
            this.#fd = made.fd
            if (made.staged !== undefined) this.#staged = [made.staged, p]
          }
          break
        case 'symlink':
          symlinkSync(e.linkname, p)
          if (this.#foreign(e)) lchownSync(p, e.uid, e.gid)
          lutimesSync(p, e.mtime, e.mtime)
          break
        case 'hardlink': {
          // Its target may be one of the worker's links still queued: then it goes after it, in order.
          const target = fsPath(join(this.#dest, e.linkname))
          if (this.#links) this.#links.link(target, p)
          else linkSync(target, p)
          break
        }
      }
    } catch (err) {
      this.#fail(err)
    }
  }

  data(bytes: Buffer): void {
    if (this.#fd === undefined) return // hard-linked, or given up
    try {
      for (let off = 0; off < bytes.length; ) off += writeSync(this.#fd, bytes, off, bytes.length - off)
    } catch (err) {
      this.#fail(err)
    }
  }

  end(e: LayerEntry): void {
    const fd = this.#fd
    if (fd === undefined || e.type !== 'file') return
    this.#fd = undefined
    const staged = this.#staged
    this.#staged = undefined
    try {
      if (this.#foreign(e)) fchownSync(fd, e.uid, e.gid)
      fchmodSync(fd, e.mode) // after chown, which clears setuid/setgid
      futimesSync(fd, e.mtime, e.mtime)
    } catch (err) {
      this.#fail(err)
    } finally {
      closeSync(fd)
    }
    if (staged === undefined || this.#failed !== undefined) return
    try {
      this.#creates.place(staged[0], staged[1])
    } catch (err) {
      this.#fail(err)
    }
  }

  /** Waits for the hard links under way (a tree given up is removed only after them). */
  async settle(): Promise<void> {
    const links = this.#links
    this.#links = undefined
    try {
      await links?.done()
    } catch (err) {
      this.#fail(err)
    }
    this.#creates.close()
  }

  /**
   * Sets directory mtimes, deepest first (writing their children moved them), once the hard links
   * are made. Returns {@link ok}.
   */
  async finish(): Promise<boolean> {
    await this.settle()
    if (this.#fd !== undefined) this.#fail(new Error('the layer ended inside a file'))
    if (this.#failed !== undefined) return false
    try {
      for (const d of this.#dirs.reverse()) utimesSync(fsPath(join(this.#dest, d.path)), d.mtime, d.mtime)
    } catch (err) {
      this.#fail(err)
    }
    return this.ok
  }

  /**
   * Hard-links an unchanged file from the previous snapshot; false (write it) on any doubt. The file
   * there is checked here; the link itself is made on a worker thread (link-worker.ts), beside the
   * layer writer's reads and hashes. A link that then cannot be made (too many links, the file gone)
   * gives the tree up, as any write error does, since its bytes have gone by: a later step unpacks
   * the blob instead.
   */
  #linkPrevious(e: LayerEntry, p: PathLike): boolean {
    if (!this.#reuse || e.type !== 'file' || !this.#reuse.same(e)) return false
    const from = fsPath(join(this.#reuse.dir, e.path))
    try {
      const st = lstatSync(from)
      if (!st.isFile() || st.size !== e.size || (st.mode & 0o7777) !== e.mode || st.uid !== e.uid || st.gid !== e.gid || Math.floor(st.mtimeMs / 1000) !== e.mtime) return false
    } catch {
      return false // gone (pruned meanwhile): written instead
    }
    ;(this.#links ??= new LinkWorker()).link(from, p)
    return true
  }

  #fail(err: unknown): void {
    this.#failed ??= err
    if (this.#fd !== undefined) {
      try {
        closeSync(this.#fd)
      } catch {
        // already closed or never valid; nothing to keep
      }
      this.#fd = undefined
    }
  }
}
