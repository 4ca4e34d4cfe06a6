import { dirname, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ErrorCodes, ImagesmithError, InvalidArgumentError, isImagesmithError } from '../errors.js'

/** Frames looked at for the caller: a builder call is rarely deeper than this below user code. */
const FRAMES = 40

/** The library's own directory (src/ in a checkout, dist/ when bundled): frames in it are not the caller. */
const LIBRARY_DIR = libraryDir(fileURLToPath(import.meta.url))

function libraryDir(file: string): string {
  let dir = dirname(file)
  for (let i = 0; i < 4; i++) {
    const base = dir.slice(dir.lastIndexOf(sep) + 1)
    if (base === 'src' || base === 'dist') return dir + sep
    dir = dirname(dir)
  }
  return dirname(file) + sep
}

/**
 * `file:line` of the first stack frame outside the library and node's internals: the line of the
 * build script that called the builder. Source-mapped when the process maps stacks (the CLI turns
 * that on before it loads a script), so a TypeScript script's line is its own, not the compiled one's.
 */
export function callerLocation(): string | undefined {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = FRAMES
  const stack = new Error().stack ?? ''
  Error.stackTraceLimit = limit
  for (const line of stack.split('\n').slice(1)) {
    const frame = frameLocation(line.trim())
    if (!frame) continue
    // Only a file on disk is a place to name (not node:internal, nor a data: URL a loader evaluated).
    if (!frame.file.startsWith('/') || frame.file.startsWith(LIBRARY_DIR)) continue
    return `${frame.file}:${frame.line}`
  }
  return undefined
}

/** `at fn (FILE:LINE:COL)` or `at FILE:LINE:COL`; file URLs become paths. */
function frameLocation(text: string): { file: string; line: number } | undefined {
  if (!text.startsWith('at ')) return undefined
  let loc = text.slice(3)
  if (loc.endsWith(')')) {
    const open = loc.lastIndexOf('(')
    if (open < 0) return undefined
    loc = loc.slice(open + 1, -1)
  }
  const c2 = loc.lastIndexOf(':')
  const c1 = c2 > 0 ? loc.lastIndexOf(':', c2 - 1) : -1
  if (c1 <= 0) return undefined
  const line = Number(loc.slice(c1 + 1, c2))
  if (!Number.isInteger(line)) return undefined
  let file = loc.slice(0, c1)
  if (file.startsWith('file://')) {
    try {
      file = fileURLToPath(file)
    } catch {
      return undefined
    }
  }
  return { file, line }
}

/**
 * What a builder method throws: a typed error naming the caller's `file:line` (`details.location`
 * and the message). An error that is not ours (a TypeError from a value the checks let through)
 * never becomes the message: it is the cause of an INVALID_ARGUMENT naming the method.
 */
export function atCaller(e: unknown, method: string): ImagesmithError {
  if (isImagesmithError(e) && e.details.location !== undefined) return e
  const location = callerLocation()
  const err = isImagesmithError(e)
    ? e
    : Object.assign(new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${method}() cannot use its arguments (check their types)`, { method }), { cause: e })
  if (location === undefined) return err
  // Our own error, made a moment ago in this call: adding the place is safe.
  const located = err as { message: string; details: Readonly<Record<string, unknown>> }
  located.message = `${err.message} (at ${location})`
  located.details = Object.freeze({ ...err.details, location })
  return err
}
