/**
 * The one way anything under a store (or an OCI layout) is written: bytes go to a temp name that is
 * unique per call, optionally reach the disk (fsync), then are renamed onto the final name, so a
 * reader sees either nothing or the whole file and two writers never share a temp file. The file is
 * fsynced only where a crash could otherwise leave a name over missing bytes that something trusts
 * (each fsync costs a journal commit: ~0.2 ms idle, several ms on a busy disk).
 *
 * Temp names carry their writer's owner tag (`<stem>.tmp-<pid>-o<id>-<random>`, see util/owner.ts):
 * a process that died mid-write (SIGKILL, power loss) leaves a temp that {@link sweepDeadTemps}
 * removes once that writer is gone, judged by its owner lock, not by a pid another pid namespace
 * may reuse. Temp dirs ({@link makeTempDir}) are named the same way.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream, promises as fsp, type WriteStream } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { isOwnerAlive, isSelf, OWNER_TAG_SOURCE, ownerTag, parseOwnerTag, type Owner } from '../util/owner.js'

export interface AtomicWriteOptions {
  /**
   * fsync the bytes before the rename, so after a crash the final name holds the whole content or
   * does not exist (never an empty or torn file): blobs, whose presence a cache hit trusts, and
   * cache entries. A lost rename is harmless there (the work is redone).
   * @default false
   */
  readonly fsync?: boolean
  /**
   * Also fsync the directory after the rename, so the name itself survives a crash: outputs a user
   * reads next (an OCI layout's index.json). Implies `fsync`.
   * @default false
   */
  readonly fsyncDir?: boolean
  /** Directory for the temp file (must be on the final name's filesystem). @default beside the final name */
  readonly tmpDir?: string
  /** File mode of the result. @default 0o644 (before umask) */
  readonly mode?: number
}

/** `<dir>/<stem>.tmp-<owner tag>-<random>`: a fresh name on every call, even within one process. */
export function tempPath(dir: string, stem: string): string {
  return join(dir, `${stem}.tmp-${ownerTag()}-${randomBytes(8).toString('hex')}`)
}

/** Creates (with its parents) a fresh private dir `<dir>/<stem>.tmp-<owner tag>-XXXXXX`. */
export async function makeTempDir(dir: string, stem: string): Promise<string> {
  await fsp.mkdir(dir, { recursive: true })
  return fsp.mkdtemp(join(dir, `${stem}.tmp-${ownerTag()}-`))
}

export interface TempMatch {
  /**
   * Also recognise step dirs `<kind>-<pid>-…` (RUN bundles in the work dir, and temps of older
   * stores). Only for folders the store owns: in a user's folder such a name may be anything.
   * @default false
   */
  readonly stepDirs?: boolean
}

const TEMP_NAME = new RegExp(String.raw`\.tmp-(${OWNER_TAG_SOURCE})-[0-9a-zA-Z]+$`)
const STEP_DIR_NAME = new RegExp(`^[a-z]+-(${OWNER_TAG_SOURCE})-`)

/** The writer of temp entry `name` (its pid and owner id), or undefined when it is no temp of ours. */
export function tempWriter(name: string, opts: TempMatch = {}): Owner | undefined {
  const m = TEMP_NAME.exec(name) ?? (opts.stepDirs ? STEP_DIR_NAME.exec(name) : null)
  return m ? parseOwnerTag(m[1]!) : undefined
}

/** The pid of the process that made temp entry `name`, or undefined when it is no temp of ours. */
export function tempWriterPid(name: string, opts: TempMatch = {}): number | undefined {
  return tempWriter(name, opts)?.pid
}

/** Whether `name` is a temp entry whose writer is gone (never one of this process's own). */
export function isDeadTemp(name: string, opts: TempMatch = {}): boolean {
  const owner = tempWriter(name, opts)
  return owner !== undefined && !isSelf(owner) && !isOwnerAlive(owner)
}

/** Writes `data` to `path` atomically; on any failure no temp file is left behind. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempPath(opts.tmpDir ?? dirname(path), basename(path))
  try {
    await fsp.writeFile(tmp, data, { mode: opts.mode ?? 0o644, flush: opts.fsync === true || opts.fsyncDir === true })
    await fsp.rename(tmp, path)
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined)
    throw e
  }
  if (opts.fsyncDir) await syncDir(dirname(path))
}

/** A file being written under a temp name; the final name may be known only at the end (a digest). */
export interface AtomicFileWriter {
  /** The temp file (for callers that must hand a path to a tool). */
  readonly tmp: string
  readonly stream: WriteStream
  /** Waits for the stream to close (after `end()`), then renames the temp file to `path`. */
  commit(path: string): Promise<void>
  /** Removes the temp file; safe after a failed or aborted write, and a no-op after commit. */
  abort(): Promise<void>
}

/** Opens a write stream on a fresh temp file `<dir>/<stem>.tmp-<pid>-<random>`. */
export function createAtomicWriter(dir: string, stem: string, opts: AtomicWriteOptions = {}): AtomicFileWriter {
  const tmp = tempPath(dir, stem)
  // `flush` fsyncs the fd before it is closed, so data is on disk before the rename.
  const stream = createWriteStream(tmp, { highWaterMark: 1 << 20, mode: opts.mode ?? 0o644, flush: opts.fsync === true || opts.fsyncDir === true })
  let committed = false
  // Remembered here so a write error can never be followed by a rename of the partial file.
  let failed: unknown
  stream.on('error', (e) => { failed ??= e })
  const closed = (): Promise<void> =>
    stream.closed ? Promise.resolve() : new Promise<void>((res, rej) => { stream.once('close', res); stream.once('error', rej) })
  return {
    tmp,
    stream,
    async commit(path: string) {
      if (!stream.writableEnded && !stream.destroyed) throw new Error(`atomic write of ${path}: commit before the stream was ended`)
      await closed()
      if (failed !== undefined) throw failed
      if (!stream.writableFinished) throw new Error(`atomic write of ${path}: the stream was destroyed before it finished`)
      await fsp.rename(tmp, path)
      committed = true
      if (opts.fsyncDir) await syncDir(dirname(path))
    },
    async abort() {
      if (committed) return
      // Until the fd is open the file may not exist yet; removing it first would let the open recreate it.
      if (stream.pending && !stream.closed && !stream.destroyed) {
        await new Promise<void>((res) => { stream.once('open', () => res()); stream.once('error', () => res()) })
      }
      stream.destroy()
      if (!stream.closed) await new Promise<void>((res) => stream.once('close', () => res()))
      await fsp.rm(tmp, { force: true })
    },
  }
}

/**
 * Renames a finished temp dir (or file) onto `path`. Returns false, and removes the temp, when
 * another writer placed `path` first: names under a store are content-addressed, so theirs is ours.
 */
export async function renameOrDiscard(tmp: string, path: string): Promise<boolean> {
  try {
    await fsp.rename(tmp, path)
    return true
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e
    await fsp.rm(tmp, { recursive: true, force: true })
    return false
  }
}

export interface SweepOptions extends TempMatch {
  /** Narrows the sweep to names it accepts (e.g. one output's temps in a user's directory). */
  readonly only?: (name: string) => boolean
}

/** Removes temp entries in `dir` (files or whole dirs) whose writer process is gone; returns how many. */
export async function sweepDeadTemps(dir: string, opts: SweepOptions = {}): Promise<number> {
  let removed = 0
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    if ((opts.only && !opts.only(name)) || !isDeadTemp(name, opts)) continue
    await fsp.rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined)
    removed++
  }
  return removed
}

/** fsync a directory, so a rename in it survives a crash. Filesystems that cannot sync dirs are ignored. */
async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined
  try {
    fh = await fsp.open(dir, 'r')
    await fh.sync()
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM') throw e
  } finally {
    await fh?.close()
  }
}
