import PQueue from 'p-queue'
import { throwIfAborted } from '../errors.js'
import type { Graph } from '../graph/node.js'
import type { Digest } from '../oci/media-types.js'
import type { AnyVertex, ExecContext, ExecutorTable, ImageState } from './types.js'

export interface SolveOptions {
  /** Vertices run at once. @default 2 */
  readonly concurrency?: number
}

export interface SolveResult {
  readonly state: ImageState
  readonly cacheHits: number
  readonly states: ReadonlyMap<Digest, ImageState>
}

/**
 * Runs every vertex after its inputs, independent ones in parallel. Each vertex runs once per solve
 * even when several stages depend on it. A vertex waits for its inputs before it takes a queue slot,
 * so waiting never holds a slot.
 */
export async function solve(
  graph: Graph,
  executors: ExecutorTable,
  ctx: Omit<ExecContext, 'result'>,
  opts: SolveOptions = {},
): Promise<SolveResult> {
  const queue = new PQueue({ concurrency: opts.concurrency ?? 2 })
  const byId = new Map<Digest, AnyVertex>(graph.vertices.map((v) => [v.id, v]))
  const states = new Map<Digest, ImageState>()
  const running = new Map<Digest, Promise<ImageState>>()
  let cacheHits = 0
  const fullCtx: ExecContext = {
    ...ctx,
    result: (id) => {
      const s = states.get(id)
      if (!s) throw new Error(`vertex ${id} read before it was solved`)
      return s
    },
  }

  const run = (id: Digest): Promise<ImageState> => {
    let p = running.get(id)
    if (!p) {
      p = (async () => {
        const vertex = byId.get(id)
        if (!vertex) throw new Error(`graph has no vertex ${id}`)
        const inputs = await Promise.all(vertex.inputs.map(run))
        return queue.add(
          async () => {
            throwIfAborted(ctx.signal)
            const started = Date.now()
            ctx.emit({ type: 'start', vertex: id, description: vertex.meta.description })
            try {
              const executor = executors[vertex.kind] as ExecutorTable[typeof vertex.kind]
              const res = await (executor.exec as (v: AnyVertex, i: readonly ImageState[], c: ExecContext) => ReturnType<typeof executor.exec>)(vertex, inputs, fullCtx)
              if (res.cached) {
                cacheHits++
                ctx.emit({ type: 'cached', vertex: id, description: vertex.meta.description })
              }
              ctx.emit({ type: 'done', vertex: id, description: vertex.meta.description, ms: Date.now() - started })
              states.set(id, res.state)
              return res.state
            } catch (error) {
              ctx.emit({ type: 'error', vertex: id, description: vertex.meta.description, error })
              throw error
            }
          },
        ) as Promise<ImageState>
      })()
      running.set(id, p)
      // A failed branch must not surface as an unhandled rejection while others still run.
      p.catch(() => {})
    }
    return p
  }

  const state = await run(graph.output)
  return { state, cacheHits, states }
}
