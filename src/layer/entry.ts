/**
 * One entry of a layer tar, as the layer writer consumes it. Producers (COPY, ADD, RUN diff) build
 * these from the filesystem; the writer turns them into deterministic tar bytes.
 *
 * `path` is relative to the image root, '/'-separated, without a leading '/' or './' and without a
 * trailing '/' (the writer adds one for directories). mtime is in whole seconds since the epoch.
 *
 * Names are bytes. Paths, link targets and host source paths are strings in the "surrogateescape"
 * form of util/names.ts: valid UTF-8 as itself, every other byte as U+DC80–U+DCFF. Producers read names
 * with `encoding: 'buffer'` + `nameFromBytes`, pass `fsPath(p)` to fs calls, and the writer emits
 * `nameBytes(p)`: the exact bytes, in the ustar name/linkname fields or (over 100 bytes) a PAX
 * path/linkpath record. PAX says those records are UTF-8, but Go's archive/tar (Docker, BuildKit)
 * writes a name's raw bytes there and GNU tar reads them back unchanged, so bytes are what we write.
 */
import type { MemberCutSizes } from './member-cut.js'

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
  /**
   * Host file to read the bytes from, or the bytes themselves for small generated files. `stamp` is
   * the file's lstat as the context walk saw it (statStamp), so the COPY check need not stat it again.
   */
  readonly source: { readonly path: string; readonly stamp?: string } | { readonly data: Buffer }
}

export interface DirEntry extends EntryBase {
  readonly type: 'dir'
}

export interface SymlinkEntry extends EntryBase {
  readonly type: 'symlink'
  readonly linkname: string
}

/**
 * A hard link to an earlier entry of the same layer; `linkname` is that entry's path. Any type but
 * a directory can be hard-linked (files, symlinks, devices, fifos), as Go's archive/tar pairs them.
 */
export interface HardlinkEntry extends EntryBase {
  readonly type: 'hardlink'
  readonly linkname: string
  /**
   * Type of the linked entry, for the file-type bits of the tar mode field, and its device numbers:
   * Go's archive/tar (BuildKit) keeps both in a hard link's header; readers go by linkname.
   * @default 'file'
   */
  readonly targetType?: Exclude<LayerEntry['type'], 'hardlink' | 'dir'>
  readonly devmajor?: number
  readonly devminor?: number
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

/**
 * Receives the entries the tar serializer (tar-writer.ts) serializes, in order: `begin`, then the
 * entry's file content in pieces (`data`; the buffer is only valid during the call), then `end`.
 * Called synchronously from the serializer; a tee that fails must swallow its own errors (the layer
 * is what the caller asked for).
 */
export interface EntryTee {
  begin(entry: LayerEntry): void
  data(bytes: Buffer): void
  end(entry: LayerEntry): void
}

export type Compression = 'gzip' | 'none'

export interface LayerWriteOptions {
  /** @default 'gzip' */
  readonly compression?: Compression
  /** gzip level 1–9. @default 6 (Docker's and Go's default) */
  readonly level?: number
  readonly signal?: AbortSignal
  /** Told the bytes written so far, about every MiB (progress reporting). */
  readonly onBytes?: (bytes: number) => void
  /** Sees every entry and file byte as the writer reads it (a snapshot written in the same pass). */
  readonly tee?: EntryTee
  /**
   * The sha256 (hex) host files must have, by host path (the content key's; see content-key.ts):
   * each is checked on the bytes the writer reads, SOURCE_CHANGED and nothing committed when they
   * differ. Files not named are not hashed.
   */
  readonly expect?: ReadonlyMap<string, string>
  /**
   * The stat stamp a host file had when this build hashed it for `expect` (StatCache.provenStamp): a
   * file with that stamp when opened and after it is read is not hashed again (TarChunkOptions.proven).
   */
  readonly proven?: (hostPath: string) => string | undefined
  /**
   * Keep the gzip member index of the layer in `dir` (store/member-index.ts), and copy from blob
   * `previous` (the same step's last layer, at `previousPath`) every member whose uncompressed
   * bytes are unchanged instead of compressing it again. The layer's bytes are the same either way.
   */
  readonly members?: {
    readonly dir: string
    readonly previous?: { readonly digest: string; readonly path: string }
    /** Told how many members were copied from `previous` and how many compressed, once the layer is committed. */
    readonly onDone?: (counts: { readonly reused: number; readonly compressed: number }) => void
    /** Other cut sizes than member-cut.ts's (tests only: they change the layer's bytes). */
    readonly cut?: MemberCutSizes
  }
}
