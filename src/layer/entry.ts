/**
 * One entry of a layer tar, as the layer writer consumes it. Producers (COPY, ADD, RUN diff) build
 * these from the filesystem; the writer turns them into deterministic tar bytes.
 *
 * `path` is relative to the image root, '/'-separated, without a leading '/' or './' and without a
 * trailing '/' (the writer adds one for directories). mtime is in whole seconds since the epoch.
 */
export interface EntryBase {
  readonly path: string
  readonly mode: number // permission bits incl. setuid/setgid/sticky (no file-type bits)
  readonly uid: number
  readonly gid: number
  readonly mtime: number
  /** Extended attributes to keep (e.g. security.capability), written as PAX SCHILY.xattr.* records. */
  readonly xattrs?: Readonly<Record<string, Buffer>>
}

export interface FileEntry extends EntryBase {
  readonly type: 'file'
  readonly size: number
  /** Host file to read the bytes from, or the bytes themselves for small generated files. */
  readonly source: { readonly path: string } | { readonly data: Buffer }
}

export interface DirEntry extends EntryBase {
  readonly type: 'dir'
}

export interface SymlinkEntry extends EntryBase {
  readonly type: 'symlink'
  readonly linkname: string
}

/** A hard link to an earlier entry of the same layer; `linkname` is that entry's path. */
export interface HardlinkEntry extends EntryBase {
  readonly type: 'hardlink'
  readonly linkname: string
}

export interface DeviceEntry extends EntryBase {
  readonly type: 'char' | 'block'
  readonly devmajor: number
  readonly devminor: number
}

export interface FifoEntry extends EntryBase {
  readonly type: 'fifo'
}

export type LayerEntry = FileEntry | DirEntry | SymlinkEntry | HardlinkEntry | DeviceEntry | FifoEntry

export type Compression = 'gzip' | 'none'

export interface LayerWriteOptions {
  /** @default 'gzip' */
  readonly compression?: Compression
  /** gzip level 1–9. @default 6 (Docker's and Go's default) */
  readonly level?: number
  readonly signal?: AbortSignal
}
