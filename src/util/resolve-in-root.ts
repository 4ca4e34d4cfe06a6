/**
 * The one function that resolves a path inside a root directory, for the build context (COPY
 * sources) and for an image's rootfs seen from the host (RUN workdirs, mount targets). It follows
 * symlinks the way a process chrooted at `root` would, like BuildKit's `fs.RootPath`: an absolute
 * link target starts again at `root`, `..` stops at `root`, so the result never names a host path
 * outside it whatever the links say. This is the guard against an image or a context reaching the
 * host: every caller goes through here. Synchronous on purpose: one promise per path component
 * costs more than the syscall.
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { symlinkLoopError } from '../errors.js'
import { fsPath, nameFromBytes } from './names.js'

/** Links followed in one resolution before it counts as a loop (Linux gives up after 40; BuildKit after 255). */
export const MAX_LINKS = 255

/** A path resolved inside a root. */
export interface RootPath {
  /** Path relative to the root ('' = the root itself), '/'-separated, symlinks resolved. */
  readonly rel: string
  /** Absolute host path: `root` joined with `rel`, always inside `root`. */
  readonly host: string
  /** lstat of `host`; undefined when nothing is there (a missing component, or a non-directory on the way). */
  readonly stat: Stats | undefined
}

export interface ResolveOptions {
  /** Follow a symlink in the last component too. @default true */
  readonly followLast?: boolean
}

/**
 * Resolves `path` (relative, or absolute meaning "from the root") inside `root`. Missing
 * components are kept as written (what a mkdir would create). Throws SYMLINK_LOOP when more than
 * {@link MAX_LINKS} links are followed; an lstat failure other than "not there" (EACCES on a
 * directory on the way) is thrown as it is, for the caller's gateway to name the path.
 */
export function resolveInRoot(root: string, path: string, opts: ResolveOptions = {}): RootPath {
  const followLast = opts.followLast ?? true
  const todo = components(path)
  const done: string[] = []
  let links = 0
  // lstat of the last pushed component; 'unknown' after a `..` (re-read at the end).
  let last: Stats | undefined | 'unknown' = 'unknown'
  while (todo.length > 0) {
    const part = todo.shift()!
    if (part === '..') {
      done.pop()
      last = 'unknown'
      continue
    }
    const st = lstatOrUndefined(join(root, ...done, part))
    if (st?.isSymbolicLink() && (todo.length > 0 || followLast)) {
      if (++links > MAX_LINKS) throw symlinkLoopError(path, { root })
      const target = nameFromBytes(readlinkSync(fsPath(join(root, ...done, part)), { encoding: 'buffer' }))
      if (target.startsWith('/')) done.length = 0
      todo.unshift(...components(target))
      continue
    }
    done.push(part)
    last = st
  }
  const rel = done.join('/')
  const host = rel === '' ? root : join(root, rel)
  return { rel, host, stat: last === 'unknown' ? lstatOrUndefined(host) : last }
}

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.')
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(fsPath(p)) // names are bytes: see names.ts
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw e
  }
}
