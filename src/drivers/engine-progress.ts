/**
 * The engine's build stream as our progress events. Docker's BuildKit sends `moby.buildkit.trace`
 * (a StatusResponse per message: vertexes, logs); Podman's service (buildah) and Docker's classic
 * builder send `stream` text, whose `STEP n/m:` / `Step n/m :` lines start steps. The image id comes
 * from `moby.image.id` (BuildKit) or a plain `aux.ID` (Podman). The failing step, its exit code and
 * its output's tail are kept for the error.
 */
import { createHash } from 'node:crypto'
import type { Digest } from '../oci/media-types.js'
import type { ProgressEvent } from '../solver/types.js'
import { decodeBuildkitTrace } from '../docker/buildkit-trace.js'

/** Bytes of a step's output kept for its error. */
const TAIL_BYTES = 4096
/** Steps tracked at most: a build is not that long, and a hostile stream cannot grow the map further. */
const MAX_VERTICES = 100_000

interface Seen {
  readonly digest: Digest
  name: string
  started: boolean
  finished: boolean
  startedAt?: number
  tail: string
}

export interface EngineFailure {
  readonly message: string
  readonly step?: string
  readonly exitCode?: number
  readonly outputTail?: string
}

export class EngineProgress {
  readonly #emit: (e: ProgressEvent) => void
  readonly #seen = new Map<string, Seen>()
  #current: Seen | undefined
  #failedStep: Seen | undefined
  imageId: string | undefined
  failure: EngineFailure | undefined
  /** Whether the engine sent BuildKit's trace (Docker) or text (Podman, the classic builder). */
  buildkit = false

  constructor(emit: (e: ProgressEvent) => void) {
    this.#emit = emit
  }

  handle(m: Record<string, unknown>): void {
    if (m.id === 'moby.buildkit.trace' && typeof m.aux === 'string') {
      this.buildkit = true
      this.#trace(m.aux)
      return
    }
    const aux = m.aux as { ID?: unknown } | undefined
    if (aux && typeof aux === 'object' && typeof aux.ID === 'string' && (m.id === 'moby.image.id' || m.id === undefined)) this.imageId = aux.ID
    if (typeof m.stream === 'string') this.#stream(m.stream)
    if (typeof m.error === 'string' || (m.errorDetail && typeof m.errorDetail === 'object')) {
      const message = String((m.errorDetail as { message?: unknown } | undefined)?.message ?? m.error)
      const failed = this.#failedStep ?? this.#current
      const exitCode = exitCodeOf(message)
      this.failure = { message, ...(failed ? { step: failed.name, outputTail: failed.tail } : {}), ...(exitCode !== undefined ? { exitCode } : {}) }
      if (failed && !failed.finished) {
        failed.finished = true
        this.#emit({ type: 'error', vertex: failed.digest, description: failed.name, error: new Error(message), time: Date.now() })
      }
    }
  }

  /** Ends whatever text step is still open (the stream ended). */
  finish(): void {
    if (!this.buildkit && this.#current && !this.#current.finished && !this.failure) this.#done(this.#current, Date.now(), false)
  }

  #vertex(key: string, name: string): Seen | undefined {
    let v = this.#seen.get(key)
    if (!v) {
      if (this.#seen.size >= MAX_VERTICES) return undefined
      const digest = (/^sha256:[0-9a-f]{64}$/.test(key) ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`) as Digest
      v = { digest, name, started: false, finished: false, tail: '' }
      this.#seen.set(key, v)
    }
    if (name) v.name = name
    return v
  }

  #start(v: Seen, time: number): void {
    if (v.started) return
    v.started = true
    v.startedAt = time
    this.#emit({ type: 'start', vertex: v.digest, description: v.name, time })
  }

  #done(v: Seen, time: number, cached: boolean): void {
    if (v.finished) return
    v.finished = true
    if (cached) this.#emit({ type: 'cached', vertex: v.digest, description: v.name, time })
    this.#emit({ type: 'done', vertex: v.digest, description: v.name, ms: Math.max(0, time - (v.startedAt ?? time)), cached, time })
  }

  #trace(aux: string): void {
    let status
    try {
      status = decodeBuildkitTrace(aux)
    } catch {
      return // a message this decoder does not know is not progress we can show
    }
    for (const tv of status.vertexes) {
      const v = this.#vertex(tv.digest, tv.name)
      if (!v) continue
      if (tv.started !== undefined || tv.cached) this.#start(v, tv.started ?? tv.completed ?? Date.now())
      if (tv.error) {
        this.#failedStep ??= v
        if (!v.finished) {
          v.finished = true
          this.#emit({ type: 'error', vertex: v.digest, description: v.name, error: new Error(tv.error), time: tv.completed ?? Date.now() })
        }
      } else if (tv.completed !== undefined) this.#done(v, tv.completed, tv.cached)
    }
    for (const log of status.logs) {
      const v = this.#seen.get(log.vertex)
      if (!v) continue
      v.tail = (v.tail + log.data.toString('utf8')).slice(-TAIL_BYTES)
      this.#emit({ type: 'log', vertex: v.digest, stream: log.stream === 2 ? 'stderr' : 'stdout', data: log.data })
    }
  }

  #stream(text: string): void {
    for (const line of text.split('\n')) {
      const step = stepLine(line)
      if (step !== undefined) {
        const now = Date.now()
        if (this.#current) this.#done(this.#current, now, false)
        const v = this.#vertex(`${this.#seen.size}\0${step}`, step)
        if (!v) continue
        this.#current = v
        this.#start(v, now)
        continue
      }
      if (line === '' || !this.#current) continue
      const cur = this.#current
      cur.tail = (cur.tail + line + '\n').slice(-TAIL_BYTES)
      // Docker's classic builder marks a reused step with a line of its own.
      this.#emit({ type: 'log', vertex: cur.digest, stream: 'stdout', data: Buffer.from(`${line}\n`) })
    }
  }
}

/** `STEP 2/3: COPY a /b` (buildah) or `Step 2/3 : COPY a /b` (Docker's classic builder): the instruction. */
function stepLine(line: string): string | undefined {
  const head = line.startsWith('STEP ') ? 5 : line.startsWith('Step ') ? 5 : -1
  if (head < 0) return undefined
  const colon = line.indexOf(':', head)
  if (colon < 0 || colon - head > 24) return undefined
  const counter = line.slice(head, colon).trim()
  const slash = counter.indexOf('/')
  if (slash <= 0 || !isDigits(counter.slice(0, slash)) || !isDigits(counter.slice(slash + 1))) return undefined
  return line.slice(colon + 1).trim()
}

function isDigits(s: string): boolean {
  if (s.length === 0 || s.length > 9) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

/**
 * The exit code in an engine's failure text: BuildKit's `…: exit code: N`, buildah's `exit status N`.
 * The last occurrence wins; a scan with indexOf and a few digits, no regex over the message.
 */
export function exitCodeOf(message: string): number | undefined {
  for (const marker of ['exit code: ', 'exit status ']) {
    const at = message.lastIndexOf(marker)
    if (at < 0) continue
    let end = at + marker.length
    const start = end
    while (end < message.length && end - start < 10) {
      const c = message.charCodeAt(end)
      if (c < 48 || c > 57) break
      end++
    }
    if (end > start) return Number(message.slice(start, end))
  }
  return undefined
}
