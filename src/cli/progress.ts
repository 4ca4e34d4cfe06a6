/**
 * Renders build()'s progress events on stderr, as buildx's `--progress` does: `tty` a live view redrawn
 * in place, `plain` one line per event (CI), `rawjson` one JSON event per line, `quiet` nothing (errors
 * are printed by the caller). Every mode but quiet ends with a summary.
 */
import type { BuildResult } from '../pipeline/options.js'
import type { ProgressEvent } from '../solver/types.js'
import { ErrorCodes, isImagesmithError, type ImagesmithError } from '../errors.js'
import { LineBuffer } from './log-lines.js'

export type ProgressMode = 'tty' | 'plain' | 'rawjson' | 'quiet'

export const PROGRESS_MODES = ['auto', 'plain', 'tty', 'rawjson', 'quiet'] as const

export interface ProgressSink {
  err(s: string): void
}

export interface ProgressRenderer {
  readonly onEvent: (e: ProgressEvent) => void
  /** Whether every line of a step's output was printed as it came (plain): a failure need not repeat its tail. */
  readonly showsOutput?: boolean
  /** Stops redrawing and prints the summary (not in quiet or rawjson). */
  finish(result?: BuildResult, outputPath?: string): void
}

/** `auto` is the live view on a terminal, plain lines otherwise (buildx's rule). */
export function progressMode(flag: string, isTTY: boolean): ProgressMode {
  if (flag === 'auto') return isTTY ? 'tty' : 'plain'
  return flag as ProgressMode
}

/** A partial output line (no newline yet) is printed after this long without its end. */
export const PARTIAL_LINE_MS = 1000

export interface RendererOptions {
  /** @default {@link PARTIAL_LINE_MS} */
  readonly partialLineMs?: number
}

export function progressRenderer(mode: ProgressMode, io: ProgressSink, now: () => number = Date.now, opts: RendererOptions = {}): ProgressRenderer {
  const started = now()
  const steps = new StepTable()
  const summary = (result: BuildResult | undefined, outputPath: string | undefined): void => {
    if (!result) return
    const secs = ((now() - started) / 1000).toFixed(2)
    const vertices = result.vertices
    if (vertices && result.layers) {
      const built = vertices.filter((v) => v.key !== undefined && !v.cached).length
      const cached = vertices.filter((v) => v.cached).length
      io.err(`built ${result.digest} in ${secs}s (${result.layers.length} layers, ${result.cacheHits ?? 0} cached; steps: ${built} built, ${cached} cached, ${vertices.length} in all)\n`)
    } else io.err(`built ${result.digest} in ${secs}s\n`)
    if (outputPath) io.err(`output: ${outputPath}\n`)
  }
  switch (mode) {
    case 'quiet':
      return { onEvent: () => {}, finish: () => {} }
    case 'rawjson':
      return { onEvent: (e) => io.err(`${rawJson(e)}\n`), finish: () => {} }
    case 'plain': {
      const lines = new LineBuffer((vertex, line) => io.err(`#${steps.number(vertex)} ${line}\n`), opts.partialLineMs ?? PARTIAL_LINE_MS)
      return {
        showsOutput: true,
        onEvent: (e) => {
          const n = steps.number(e.vertex)
          // A step's last partial line comes before its status.
          if (e.type === 'cached' || e.type === 'done' || e.type === 'error') lines.flush(e.vertex)
          switch (e.type) {
            case 'start':
              io.err(`#${n} ${e.stage ? `[${e.stage}] ` : ''}${e.description}\n`)
              break
            case 'cached':
              io.err(`#${n} CACHED\n`)
              break
            case 'bytes':
              break // a line per MiB would drown the rest; the live view shows them
            case 'done':
              io.err(`#${n} DONE ${(e.ms / 1000).toFixed(2)}s${e.reason !== undefined ? ` (rebuilt: ${e.reason})` : ''}\n`)
              break
            case 'log':
              lines.push(e.vertex, e.stream, e.data)
              break
            case 'error':
              // The output is above, line by line: the failure is its headline only.
              io.err(`#${n} ERROR: ${errorMessage(withoutOutputTail(e.error))}\n`)
              break
          }
        },
        finish: (result, outputPath) => {
          lines.flushAll()
          summary(result, outputPath)
        },
      }
    }
    case 'tty':
      return liveView(io, steps, now, summary)
  }
}

/** One event as JSON: RUN output as base64, an error as its message and code. */
export function rawJson(e: ProgressEvent): string {
  if (e.type === 'log') return JSON.stringify({ ...e, data: e.data.toString('base64') })
  if (e.type === 'error') {
    const err = e.error as { message?: unknown; code?: unknown } | undefined
    return JSON.stringify({ ...e, error: { message: errorMessage(e.error), ...(typeof err?.code === 'string' ? { code: err.code } : {}) } })
  }
  return JSON.stringify(e)
}

/**
 * A failed RUN's error without the output tail its message carries (`details.outputTail` keeps it):
 * for a renderer that printed that output as it came, so the tail is not shown again.
 */
export function withoutOutputTail(error: unknown): unknown {
  if (!isImagesmithError(error) || error.code !== ErrorCodes.RUN_FAILED) return error
  const tail = error.details.outputTail
  if (typeof tail !== 'string' || tail === '' || !error.message.includes(`:\n${tail}`)) return error
  const copy = Object.create(Object.getPrototypeOf(error) as object) as ImagesmithError
  Object.defineProperties(copy, Object.getOwnPropertyDescriptors(error))
  Object.defineProperty(copy, 'message', { value: error.message.replace(`:\n${tail}`, ' (its output is above)'), enumerable: false, writable: true, configurable: true })
  return copy
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

interface StepState {
  readonly n: number
  description: string
  stage?: string
  status: 'running' | 'cached' | 'done' | 'error'
  started: number
  ms?: number
  bytes?: number
  reason?: string
  lines: string[]
}

/** Steps numbered in the order they first report, as BuildKit numbers them. */
class StepTable {
  readonly byId = new Map<string, StepState>()

  number(id: string): number {
    return this.get(id).n
  }

  get(id: string): StepState {
    let s = this.byId.get(id)
    if (!s) {
      s = { n: this.byId.size + 1, description: '', status: 'running', started: Date.now(), lines: [] }
      this.byId.set(id, s)
    }
    return s
  }
}

/** Lines of a running RUN's output kept on screen. */
const TAIL = 5
const REDRAW_MS = 100

function liveView(io: ProgressSink, steps: StepTable, now: () => number, summary: (r: BuildResult | undefined, o: string | undefined) => void): ProgressRenderer {
  let drawn = 0
  let timer: NodeJS.Timeout | undefined
  const cols = Math.max(40, process.stderr.columns ?? 100)
  const fit = (s: string) => (s.length > cols - 1 ? `${s.slice(0, cols - 2)}…` : s)
  const draw = (final: boolean) => {
    const out: string[] = []
    for (const s of steps.byId.values()) {
      const secs = (((s.ms ?? now() - s.started)) / 1000).toFixed(1)
      const mark = s.status === 'cached' ? 'CACHED' : s.status === 'error' ? 'ERROR' : s.status === 'done' ? 'DONE' : '...'
      const bytes = s.bytes !== undefined && s.status === 'running' ? ` ${(s.bytes / 1048576).toFixed(1)} MiB` : ''
      const reason = s.reason !== undefined ? ` (rebuilt: ${s.reason})` : ''
      out.push(fit(`#${s.n} ${s.stage ? `[${s.stage}] ` : ''}${s.description}  ${mark} ${secs}s${bytes}${reason}`))
      if (s.status === 'running' && !final) for (const l of s.lines) out.push(fit(`    ${l}`))
    }
    // Up to where the last frame began, clear below, write the new frame.
    io.err(`${drawn > 0 ? `\x1b[${drawn}A\r\x1b[J` : ''}${out.join('\n')}${out.length > 0 ? '\n' : ''}`)
    drawn = out.length
  }
  const schedule = () => {
    timer ??= setTimeout(() => {
      timer = undefined
      draw(false)
    }, REDRAW_MS)
  }
  return {
    onEvent: (e) => {
      const s = steps.get(e.vertex)
      switch (e.type) {
        case 'start':
          s.description = e.description
          if (e.stage !== undefined) s.stage = e.stage
          s.started = e.time ?? now()
          break
        case 'cached':
          s.status = 'cached'
          break
        case 'bytes':
          s.bytes = e.bytes
          break
        case 'done':
          if (s.status !== 'cached') s.status = 'done'
          s.ms = e.ms
          if (e.reason !== undefined) s.reason = e.reason
          break
        case 'log':
          s.lines.push(...e.data.toString('utf8').replace(/\n$/, '').split('\n'))
          if (s.lines.length > TAIL) s.lines.splice(0, s.lines.length - TAIL)
          break
        case 'error':
          s.status = 'error'
          s.lines = [errorMessage(e.error)]
          break
      }
      schedule()
    },
    finish: (result, outputPath) => {
      if (timer) clearTimeout(timer)
      timer = undefined
      draw(true)
      summary(result, outputPath)
    },
  }
}
