/**
 * The messages between a rootless build and its worker, and how errors and progress cross. The IR
 * and results are plain data and go as they are (advanced serialization: structured clone);
 * errors become plain records and are rebuilt on the other side as the same classes, with their
 * code, details, stack and cause, so a caller cannot tell a worker's error from a local one.
 */
import type { Platform } from '../oci/types.js'
import { ErrorCodes, ExecError, ImagesmithError, type ErrorCode } from '../errors.js'
import type { Graph } from '../graph/node.js'
import type { PruneOptions, PruneResult, UsageRecord } from '../store/gc.js'
import type { SolveOptions, SolveResult } from '../solver/solve.js'
import type { BaseImage, ExecContext, ProgressEvent } from '../solver/types.js'

/** The plain part of an {@link ExecContext} (the store becomes its root; functions stay with the parent). */
export type SolveContextData = Omit<ExecContext, 'store' | 'signal' | 'registry' | 'resolveBase' | 'emit' | 'limits' | 'step'> & {
  readonly cacheDir: string
}

export type ToWorker =
  | { readonly type: 'solve'; readonly graph: Graph; readonly ctx: SolveContextData; readonly opts: SolveOptions }
  | { readonly type: 'prune'; readonly cacheDir: string; readonly opts: PruneOptions }
  | { readonly type: 'usage'; readonly cacheDir: string }
  | { readonly type: 'abort'; readonly reason: string }
  /** The parent holds what it needs of the result in its own lease: the worker may drop its lease and exit. */
  | { readonly type: 'release' }
  | { readonly type: 'base'; readonly id: number; readonly base?: BaseImage; readonly error?: ErrorRecord }

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly event: ProgressEvent }
  | { readonly type: 'base'; readonly id: number; readonly ref: string; readonly platform: Platform }
  | { readonly type: 'done'; readonly result: SolveResult | PruneResult | readonly UsageRecord[] }
  | { readonly type: 'failed'; readonly error: ErrorRecord }

/** An error as plain data. */
export interface ErrorRecord {
  readonly name: string
  readonly message: string
  readonly stack?: string
  readonly code?: string
  readonly details?: Record<string, unknown>
  /** errno fields of a Node system error (the build's error gateway sorts by them). */
  readonly errno?: Record<string, unknown>
  readonly exec?: { readonly command: readonly string[]; readonly exitCode: number; readonly outputTail: string; readonly hint?: string }
  readonly cause?: ErrorRecord
}

/** What structured clone can carry of a details record: the values themselves, or their text. */
function cloneable(v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) {
    try {
      out[k] = structuredClone(x)
    } catch {
      out[k] = String(x)
    }
  }
  return out
}

export function encodeError(e: unknown, depth = 0): ErrorRecord {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) }
  const x = e as Error & { code?: unknown; details?: unknown; path?: unknown; syscall?: unknown; errno?: unknown; dest?: unknown }
  const errno: Record<string, unknown> = {}
  for (const k of ['code', 'path', 'syscall', 'errno', 'dest'] as const) if (x[k] !== undefined && typeof x.details !== 'object') errno[k] = x[k]
  return {
    name: e.name,
    message: e.message,
    ...(e.stack !== undefined ? { stack: e.stack } : {}),
    ...(typeof x.code === 'string' && typeof x.details === 'object' && x.details !== null ? { code: x.code, details: cloneable(x.details as Record<string, unknown>) } : {}),
    ...(Object.keys(errno).length > 0 ? { errno } : {}),
    ...(e instanceof ExecError ? { exec: { command: [...e.command], exitCode: e.exitCode, outputTail: e.outputTail, ...(typeof e.details.hint === 'string' ? { hint: e.details.hint } : {}) } } : {}),
    ...(e.cause !== undefined && depth < 8 ? { cause: encodeError(e.cause, depth + 1) } : {}),
  }
}

export function decodeError(r: ErrorRecord): Error {
  const cause = r.cause ? decodeError(r.cause) : undefined
  let e: Error
  if (r.exec) e = new ExecError(r.exec.command, r.exec.exitCode, r.exec.outputTail, r.exec.hint)
  else if (r.code !== undefined && Object.values<string>(ErrorCodes).includes(r.code)) {
    e = new ImagesmithError(r.code as ErrorCode, r.message, r.details ?? {}, cause === undefined ? undefined : { cause })
  } else {
    e = new Error(r.message, cause === undefined ? undefined : { cause })
    if (r.errno) Object.assign(e, r.errno)
  }
  if (r.exec && cause !== undefined) Object.defineProperty(e, 'cause', { value: cause, configurable: true, writable: true })
  e.name = r.name
  if (r.stack !== undefined) e.stack = r.stack
  return e
}

/** A progress event as it can cross: its error as a record. */
export function encodeEvent(e: ProgressEvent): ProgressEvent {
  return e.type === 'error' ? { ...e, error: encodeError(e.error) } : e
}

/** The event as the parent's listeners expect it: Buffers as Buffers, the error rebuilt. */
export function decodeEvent(e: ProgressEvent): ProgressEvent {
  if (e.type === 'log') {
    const d = e.data as Uint8Array
    return { ...e, data: Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength) }
  }
  if (e.type === 'error') return { ...e, error: decodeError(e.error as ErrorRecord) }
  return e
}
