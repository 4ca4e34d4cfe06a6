import { setMaxListeners } from 'node:events'
import PQueue from 'p-queue'
import { abortError, ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import type { Graph, GraphOutput, NodeKind } from '../graph/node.js'
import type { Digest } from '../oci/media-types.js'
import { createLimits, recordingLimits, type LimitsOptions, type ScheduleRecord, type SlotRecord } from './scheduler.js'
import type { AnyVertex, EarlyFinish, ExecContext, ExecResult, Executor, ExecutorTable, ImageState, ProgressEvent, VertexRecord } from './types.js'
import { inStepScope } from '../util/progress-scope.js'
import { execPlan } from '../cache/layer-cache.js'

export interface SolveOptions {
  /**
   * Vertices run at once at most. @default no cap: vertices are bounded only by the pool slots they
   * take (CPU, RUN containers, network).
   */
  readonly concurrency?: number
  /** Pool sizes, used when the context brings no {@link ExecContext.limits}. */
  readonly limits?: LimitsOptions
}

/** An output of the graph with the image state its vertex ended in. */
export interface SolvedOutput extends GraphOutput {
  readonly state: ImageState
}

export interface SolveResult {
  /** The first output's state: what a single-image build finalizes. */
  readonly state: ImageState
  /**
   * Every output of the graph with its state, in the graph's order. A list rather than a map by
   * name: a multi-platform target has one output per platform under one name.
   */
  readonly outputs: readonly SolvedOutput[]
  readonly cacheHits: number
  /** What each vertex did, in graph order. */
  readonly vertices: readonly VertexRecord[]
  /** When each vertex ran and which pool slots it held, in start order. */
  readonly schedule: readonly ScheduleRecord[]
}

/**
 * Runs every vertex after its inputs, independent ones in parallel. Each vertex runs once per solve
 * even when several stages depend on it. Vertices are not slot-limited themselves (unless
 * `concurrency` caps them): executors take a slot of the build's pools ({@link ExecContext.limits})
 * around the work that costs CPU, a container or the network, so four sleeping RUNs run at once
 * while two layers never compress on one core at once. A vertex waits for its inputs before it
 * takes anything, so waiting never holds a slot.
 *
 * One exception to "after its inputs": a vertex whose executor can start early (a COPY) and whose
 * parent is a chain of RUN, COPY and ADD steps starts from the ancestor above them, so its layer is
 * written while they run; only stacking it on the real parent waits (see {@link Executor.early}).
 *
 * The first failure cancels the rest: the signal every executor sees is aborted, so running
 * siblings stop (RUN kills its container) and queued vertices never start. solve() rejects with
 * that first error once the running vertices have settled, so nothing they hold is left mounted.
 */
export async function solve(graph: Graph, executors: ExecutorTable, ctx: ExecContext, opts: SolveOptions = {}): Promise<SolveResult> {
  const queue = new PQueue({ concurrency: opts.concurrency ?? Infinity })
  const limits = ctx.limits ?? createLimits(opts.limits)
  const t0 = Date.now()
  const schedule: ScheduleRecord[] = []
  const byId = new Map<Digest, AnyVertex>(graph.vertices.map((v) => [v.id, v]))
  const running = new Map<Digest, Promise<ImageState>>()
  const executing = new Set<Promise<unknown>>()
  const records = new Map<Digest, VertexRecord>()
  let cacheHits = 0
  const rootfsWanted = layersInRootfs(graph.vertices, byId)

  // The solve's own signal: the first failure aborts it, and so does the caller's signal (then the
  // solve fails with ABORTED, whatever the vertices cut short throw).
  const controller = new AbortController()
  const signal = controller.signal
  // Every queued or running vertex listens on it (the queue, runtimes, unpacks): a wide graph is
  // not a leak.
  setMaxListeners(0, signal)
  let failure: { readonly error: unknown } | undefined
  const fail = (error: unknown): void => {
    if (failure) return
    failure = { error }
    controller.abort(error)
  }
  const outer = ctx.signal
  const forwardAbort = () => fail(abortError(outer!))
  if (outer?.aborted) forwardAbort()
  else outer?.addEventListener('abort', forwardAbort, { once: true })
  const execCtx: ExecContext = { ...ctx, signal }

  const execute = async (vertex: AnyVertex, work: (c: ExecContext) => Promise<ExecResult>): Promise<ImageState> => {
    throwIfAborted(signal)
    const { id } = vertex
    const description = vertex.meta.description
    const started = Date.now()
    const slots: SlotRecord[] = []
    const stage = vertex.meta.stage
    ctx.emit({ type: 'start', vertex: id, description, ...(stage !== undefined ? { stage } : {}), time: started })
    try {
      const step = { vertex: id, description, ...(stage !== undefined ? { stage } : {}), rootfsWanted: rootfsWanted.has(id) }
      // The vertex's own platform, when the graph carries one (BuildKit keeps it per vertex).
      const platform = vertex.platform ?? execCtx.platform
      // Base layers read or unpacked for this step show as lines of their own (util/progress-scope.ts).
      let subMs = 0
      const pending = inStepScope(id, (e) => ctx.emit(e as ProgressEvent), () => work({ ...execCtx, platform, limits: recordingLimits(limits, slots, t0), step })).then((r) => {
        subMs = r.subMs
        return r.result
      })
      executing.add(pending)
      const res = await pending.finally(() => {
        executing.delete(pending)
        schedule.push({ vertex: id, description, start: started - t0, end: Date.now() - t0, slots })
      })
      if (res.cached) {
        cacheHits++
        ctx.emit({ type: 'cached', vertex: id, description, time: Date.now() })
      }
      // Parallel sub-steps may overlap: never below zero.
      const ms = Math.max(0, Date.now() - started - subMs)
      const reason = res.cached ? undefined : res.reason
      ctx.emit({ type: 'done', vertex: id, description, ms, cached: res.cached, ...(reason !== undefined ? { reason } : {}), time: Date.now() })
      records.set(id, {
        vertex: id,
        description,
        ...(res.key ? { key: res.key.digest, keyDoc: res.key.doc } : {}),
        cached: res.cached,
        ...(reason !== undefined ? { reason } : {}),
        ...(stage !== undefined ? { stage } : {}),
        ms,
      })
      return res.state
    } catch (error) {
      fail(error)
      ctx.emit({ type: 'error', vertex: id, description, error, time: Date.now() })
      throw error
    }
  }

  const executorOf = (vertex: AnyVertex): Executor<NodeKind> => executors[vertex.kind] as unknown as Executor<NodeKind>

  /**
   * Runs a vertex on its inputs. An executor that can give its layer's cache key first
   * ({@link Executor.prepare}) does, and the layer is then taken from the cache or made and recorded
   * here ({@link execPlan}): the cache backend answers for the key before the op's costly part runs.
   */
  const execVertex = async (vertex: AnyVertex, inputs: readonly ImageState[], c: ExecContext): Promise<ExecResult> => {
    const executor = executorOf(vertex)
    return executor.prepare ? execPlan(await executor.prepare(vertex, inputs, c), c) : executor.exec(vertex, inputs, c)
  }

  /**
   * The ancestor a vertex may start from before its parent is done: when its executor can start
   * early and only steps that change files lie between (RUN, COPY and ADD change files and history,
   * never config, ARGs or workdir), the first ancestor of another kind; else none. Only what the
   * parent's files decide then waits (the executor's finisher checks it): a COPY's layer is written
   * while the RUNs before it still run, and the COPY --from steps of one stage each start as soon as
   * the stage they read exists, together, instead of one after another.
   */
  const earlyAnchor = (vertex: AnyVertex): Digest | undefined => {
    if (!executorOf(vertex).early || vertex.inputs[0] === undefined) return undefined
    let v = byId.get(vertex.inputs[0])
    if (!v || !FILES_ONLY.has(v.kind)) return undefined
    while (v && FILES_ONLY.has(v.kind)) v = v.inputs[0] === undefined ? undefined : byId.get(v.inputs[0])
    return v?.id
  }

  /** Starts from `anchor`'s state, then finishes on the real parent (see {@link Executor.early}). */
  const executeEarly = async (vertex: AnyVertex, anchor: Digest): Promise<ImageState> => {
    const executor = executorOf(vertex)
    const parent = run(vertex.inputs[0]!)
    const [from, ...rest] = await Promise.all([run(anchor), ...vertex.inputs.slice(1).map(run)])
    return execute(vertex, async (c) => {
      let finish: EarlyFinish | undefined
      try {
        finish = await queue.add(() => executor.early!(vertex, [from!, ...rest], c), { signal })
      } catch (error) {
        // Not early after all; exec() on the real parent reports the error if it is one.
        if (signal.aborted) throw error
      }
      let inputs: ImageState[]
      try {
        inputs = [await parent, ...rest]
      } catch (error) {
        // The parent failed and the solve is cancelled: this vertex was cut short like any other.
        throw signal.aborted ? abortError(signal) : error
      }
      return queue.add(() => (finish ? finish(inputs, c) : execVertex(vertex, inputs, c)), { signal })
    })
  }

  const run = (id: Digest): Promise<ImageState> => {
    let p = running.get(id)
    if (!p) {
      p = (async () => {
        const vertex = byId.get(id)
        if (!vertex) throw new Error(`graph has no vertex ${id}`)
        const anchor = earlyAnchor(vertex)
        if (anchor !== undefined) return executeEarly(vertex, anchor)
        const inputs = await Promise.all(vertex.inputs.map(run))
        // With the signal, a queued vertex leaves the queue unstarted when the solve is cancelled.
        return queue.add(() => execute(vertex, (c) => execVertex(vertex, inputs, c)), { signal }) as Promise<ImageState>
      })()
      running.set(id, p)
      // Every branch's rejection is observed here; solve() reports the first one itself.
      p.catch(fail)
    }
    return p
  }

  try {
    // Every vertex's promise is made after its inputs' (depth-first, inputs in order, as run() would
    // reach them), so run() finds its inputs made and never recurses: a chain of 10,000 stages is
    // a chain of tens of thousands of vertices. Every output's vertices go in one queue, over one
    // set of pools; a vertex two outputs share runs once.
    if (graph.outputs.length === 0) throw new ImagesmithError(ErrorCodes.GRAPH_INVALID, 'the graph has no output', {})
    for (const id of inputsFirst(graph.outputs.map((o) => o.vertex), byId)) run(id)
    const outputs = await Promise.all(graph.outputs.map(async (o): Promise<SolvedOutput> => ({ ...o, state: await run(o.vertex) })))
    const vertices = graph.vertices.flatMap((v) => records.get(v.id) ?? [])
    schedule.sort((a, b) => a.start - b.start)
    return { state: outputs[0]!.state, outputs, cacheHits, vertices, schedule }
  } catch (error) {
    fail(error)
    // Running executors see the aborted signal; wait until they have released what they hold.
    while (executing.size > 0) await Promise.allSettled([...executing])
    throw failure!.error
  } finally {
    outer?.removeEventListener('abort', forwardAbort)
  }
}

/** Steps that change only the image's files (and history): an early start may skip over them. */
const FILES_ONLY: ReadonlySet<NodeKind> = new Set<NodeKind>(['run', 'copy', 'add'])

/**
 * The vertices the outputs depend on and the outputs themselves, each once and after its inputs (a
 * depth-first post-order, output by output, without recursion).
 */
function inputsFirst(outputs: readonly Digest[], byId: ReadonlyMap<Digest, AnyVertex>): Digest[] {
  const order: Digest[] = []
  const seen = new Set<Digest>()
  for (const output of outputs) {
    if (seen.has(output)) continue
    seen.add(output)
    const stack: { id: Digest; next: number }[] = [{ id: output, next: 0 }]
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!
      const inputs = byId.get(f.id)?.inputs ?? []
      if (f.next < inputs.length) {
        const i = inputs[f.next++]!
        if (!seen.has(i)) {
          seen.add(i)
          stack.push({ id: i, next: 0 })
        }
        continue
      }
      order.push(f.id)
      stack.pop()
    }
  }
  return order
}

/**
 * Vertices whose layer ends up in a filesystem a later step assembles: every state a RUN applies to
 * or reads through a bind mount, every stage a COPY --from reads, and the first-input ancestors of
 * those (their layers lie below).
 */
function layersInRootfs(vertices: readonly AnyVertex[], byId: ReadonlyMap<Digest, AnyVertex>): Set<Digest> {
  const wanted = new Set<Digest>()
  const mark = (id: Digest | undefined) => {
    for (let v = id === undefined ? undefined : byId.get(id); v && !wanted.has(v.id); v = v.inputs[0] === undefined ? undefined : byId.get(v.inputs[0])) {
      wanted.add(v.id)
    }
  }
  for (const v of vertices) {
    if (v.kind === 'run') for (const i of v.inputs) mark(i)
    else if (v.kind === 'copy' && v.spec.fromInput) mark(v.inputs[1])
  }
  return wanted
}
