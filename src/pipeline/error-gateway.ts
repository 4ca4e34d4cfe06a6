/**
 * The one place where whatever a build threw becomes an {@link ImagesmithError}: typed errors get
 * the step they failed in, low-level failures (errno errors from fs calls, child processes) get a
 * code of their own chosen by errno and by whose path it was (context, store or output), and
 * anything else becomes INTERNAL with the original attached as `cause`.
 */
import type { BuildPosition } from '../drivers/driver.js'
import { dirname, relative, isAbsolute } from 'node:path'
import { ErrorCodes, ImagesmithError, isImagesmithError, withDetails, type ErrorCode } from '../errors.js'

/** What the build touches: an errno failure is told apart by which of these its path is in. */
export interface GatewayScope {
  readonly contextDir: string
  readonly cacheDir: string
  /** The resolved output destination, when there is one. */
  readonly output?: string
}

/** Where the build was when it failed (the driver keeps it current). */
export type FailurePoint = Readonly<BuildPosition>

const NO_SPACE = new Set(['ENOSPC', 'EDQUOT'])
const NOT_WRITABLE = new Set(['EROFS', 'EACCES', 'EPERM'])

export function toBuildError(e: unknown, scope: GatewayScope, at: FailurePoint): ImagesmithError {
  const where = { step: at.step, vertex: at.vertex, ...(at.source ? { dockerfile: at.source.file, line: at.source.line } : {}) }
  if (isImagesmithError(e)) return withDetails(e, where)
  const err = e instanceof Error ? (e as NodeJS.ErrnoException & { dest?: string }) : undefined
  if (err?.name === 'AbortError') return typed(ErrorCodes.ABORTED, 'build aborted', {}, where, e)
  const errno = typeof err?.code === 'string' && /^E[A-Z0-9]+$/.test(err.code) ? err.code : undefined
  if (err && errno) {
    const path = err.path ?? err.dest
    const syscall = err.syscall
    const base = { errno, ...(syscall ? { syscall } : {}) }
    // A write error has no path: during the solve only the store is written, during export the output.
    const inOutput = scope.output !== undefined && (path !== undefined ? isOutputPath(path, scope.output) : at.phase === 'export')
    if (NO_SPACE.has(errno)) {
      const on = inOutput ? scope.output! : (path ?? (scope.cacheDir || undefined))
      return typed(ErrorCodes.NO_SPACE, `no space left on device${on ? ` writing ${on}` : ''}${step(at)}`, { path: on, ...base }, where, e)
    }
    if (errno === 'ELOOP') {
      return typed(ErrorCodes.SYMLINK_LOOP, `too many levels of symbolic links${path ? ` resolving ${path}` : ''}${step(at)}`, { path, ...base }, where, e)
    }
    // Whatever stops the output being made (EROFS, EACCES; Node's recursive mkdir reports EROFS as ENOENT).
    if (inOutput && at.phase === 'export') {
      return typed(ErrorCodes.OUTPUT_NOT_WRITABLE, `cannot write the output ${scope.output}: ${err.message}`, { path: scope.output, ...(path ? { file: path } : {}), ...base }, where, e)
    }
    if (NOT_WRITABLE.has(errno) && path !== undefined) {
      if (within(path, scope.contextDir)) {
        const rel = relative(scope.contextDir, path) || '.'
        return typed(ErrorCodes.CONTEXT_UNREADABLE, `cannot read ${rel} in the build context ${scope.contextDir}: ${err.message}${step(at)}`, { path, source: rel, ...base }, where, e)
      }
      if (within(path, scope.cacheDir)) {
        return typed(ErrorCodes.STORE_NOT_WRITABLE, `cannot write the store ${scope.cacheDir}: ${err.message}`, { path, store: scope.cacheDir, ...base }, where, e)
      }
    }
    return typed(ErrorCodes.INTERNAL, `${err.message}${step(at)}`, { ...(path ? { path } : {}), ...base }, where, e)
  }
  const message = err?.message ?? String(e)
  return typed(ErrorCodes.INTERNAL, `internal error: ${message}${step(at)}`, {}, where, e)
}

function typed(code: ErrorCode, message: string, details: Record<string, unknown>, where: Record<string, unknown>, cause: unknown): ImagesmithError {
  const all = Object.fromEntries(Object.entries({ ...details, ...where }).filter(([, v]) => v !== undefined))
  return new ImagesmithError(code, message, all, { cause })
}

function step(at: FailurePoint): string {
  return at.step ? ` (in ${at.step})` : ''
}

function within(path: string, dir: string): boolean {
  if (dir === '') return false // failed before the options were resolved
  const rel = relative(dir, path)
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel))
}

/** The output itself, or a temp exporters write beside it (`name.tmp-<pid>-<hex>[/…]`, see store/atomic-write.ts). */
function isOutputPath(path: string, output: string): boolean {
  return within(path, output) || (dirname(path) === dirname(output) && path.endsWith('.partial')) || path.startsWith(`${output}.tmp-`)
}
