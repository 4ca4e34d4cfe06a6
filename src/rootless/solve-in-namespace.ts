/**
 * The parent's side of a rootless build: whether the build needs the worker, and a `solve` with
 * the solver's own signature that runs the graph in it. Root builds never come here.
 */
import type { ChildProcess } from 'node:child_process'
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import type { Graph } from '../graph/node.js'
import type { PruneOptions, PruneResult, UsageRecord } from '../store/gc.js'
import type { Store } from '../store/store.js'
import type { SolveOptions, SolveResult } from '../solver/solve.js'
import type { ExecContext, ExecutorTable } from '../solver/types.js'
import { decodeError, decodeEvent, encodeError, type FromWorker, type SolveContextData, type ToWorker } from './ipc.js'
import { spawnWorker, workerError } from './namespace.js'
import { rootlessPlan, type RootlessPlan } from './prerequisites.js'
import { workerTable } from './worker-table.js'

type Solve = (graph: Graph, executors: ExecutorTable, ctx: ExecContext, opts?: SolveOptions) => Promise<SolveResult>

const ROOT_NAMES = new Set(['', 'root', '0'])

/** Whether a user spec (`name`, `uid`, `uid:gid`, `name:group`) names anything but root. */
function otherThanRoot(spec: string | undefined): boolean {
  if (spec === undefined) return false
  return spec.split(':').some((part) => !ROOT_NAMES.has(part.trim()))
}

/** Whether a vertex needs a root filesystem on disk: a RUN, or a COPY from another stage. */
function needsRootfs(graph: Graph): boolean {
  return graph.vertices.some((v) => v.kind === 'run' || (v.kind === 'copy' && v.spec.fromInput))
}

/** Whether the build sets a USER or chowns to anything but root: then it needs a subordinate range. */
export function needsOtherIds(graph: Graph): boolean {
  return graph.vertices.some(
    (v) =>
      (v.kind === 'config' && v.spec.op === 'user' && otherThanRoot(v.spec.user)) ||
      ((v.kind === 'copy' || v.kind === 'add') && otherThanRoot(v.spec.chown)),
  )
}

/** Whether a RUN step runs on the default network (a private namespace through slirp4netns), as planStep decides. */
export function needsNetwork(graph: Graph, buildNetwork: ExecContext['network']): boolean {
  return graph.vertices.some((v) => {
    if (v.kind !== 'run') return false
    const mode: string = v.spec.network === 'default' ? buildNetwork : v.spec.network
    return mode !== 'none' && mode !== 'host'
  })
}

/** Whether this process is a plain user on Linux, where privileged steps run in the worker. */
export function isRootless(): boolean {
  return process.platform === 'linux' && process.getuid !== undefined && process.getuid() !== 0
}

/**
 * The solver to use for `graph`: the worker's when a non-root user builds something that needs a
 * root filesystem (its prerequisites are checked here, before any step runs), else `local`.
 */
export function solverFor(graph: Graph, ctx: Pick<ExecContext, 'runtime' | 'network'>, local: Solve): Solve {
  if (!isRootless() || !needsRootfs(graph)) return local
  const plan = rootlessPlan({ needsOtherIds: needsOtherIds(graph), needsNetwork: needsNetwork(graph, ctx.network), ...(ctx.runtime !== undefined ? { runtime: ctx.runtime } : {}) })
  return (g, table, c, opts) => solveInNamespace(plan, g, table, c, opts ?? {})
}

/**
 * Runs the solve in a worker in the plan's user namespace. Functions cannot cross into another
 * process, so the worker runs the table its entry serves ({@link workerTable}); a build handed any
 * other table fails here rather than running steps the caller did not ask for.
 */
export async function solveInNamespace(plan: RootlessPlan, graph: Graph, table: ExecutorTable, ctx: ExecContext, opts: SolveOptions): Promise<SolveResult> {
  if (table !== workerTable) {
    throw new ImagesmithError(ErrorCodes.INTERNAL, 'a rootless build runs its steps in the worker, which serves only the built-in executor table', { table: Object.keys(table) })
  }
  // An imported cache (cacheFrom) holds functions and cannot cross either: the worker uses the store's own.
  const { store, signal, registry: _r, resolveBase, emit, limits: _l, step: _s, cache: _c, ...plain } = ctx
  const data: SolveContextData = { ...plain, cacheDir: store.root }
  return (await inWorker(plan, { type: 'solve', graph, ctx: data, opts: { ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}), ...(opts.limits ? { limits: opts.limits } : {}) } }, {
    signal,
    // The build's own lease takes over the layers before the worker drops its lease (finalize and export read them).
    beforeRelease: (r) => store.lease.hold({ blobs: (r as SolveResult).outputs.flatMap((o) => o.state.layers.map((l) => l.digest)) }),
    onMessage: (m, child) => {
      if (m.type === 'progress') emit(decodeEvent(m.event))
      else if (m.type === 'base') {
        const answer = (reply: ToWorker) => child.connected && child.send(reply)
        if (!resolveBase) answer({ type: 'base', id: m.id, error: encodeError(new ImagesmithError(ErrorCodes.INTERNAL, `no base resolver for ${m.ref}`)) })
        else resolveBase(m.ref, m.platform).then((base) => answer({ type: 'base', id: m.id, base }), (e: unknown) => answer({ type: 'base', id: m.id, error: encodeError(e) }))
      }
    },
  })) as SolveResult
}

/**
 * `imagesmith cache prune` for a plain user: snapshot dirs hold files owned by the subordinate ids,
 * which only the namespace's root may remove.
 */
export async function pruneInNamespace(store: Store, opts: PruneOptions): Promise<PruneResult> {
  const plan = rootlessPlan({ needsOtherIds: false })
  return (await inWorker(plan, { type: 'prune', cacheDir: store.root, opts }, {})) as PruneResult
}

/** `imagesmith cache ls | du` for a plain user: the sizes of snapshot dirs the user itself cannot read. */
export async function usageInNamespace(store: Store): Promise<UsageRecord[]> {
  const plan = rootlessPlan({ needsOtherIds: false })
  return (await inWorker(plan, { type: 'usage', cacheDir: store.root }, {})) as UsageRecord[]
}

interface Hooks {
  readonly signal?: AbortSignal
  beforeRelease?(result: unknown): Promise<void>
  onMessage?(m: FromWorker, child: ChildProcess): void
}

async function inWorker(plan: RootlessPlan, job: ToWorker, hooks: Hooks): Promise<unknown> {
  throwIfAborted(hooks.signal)
  const child = await spawnWorker(plan)
  const onAbort = () => {
    if (child.connected) child.send({ type: 'abort', reason: String(hooks.signal?.reason ?? 'aborted') } satisfies ToWorker)
  }
  try {
    return await new Promise<unknown>((resolve, reject) => {
      let settled = false
      const settle = (f: () => void) => {
        if (!settled) {
          settled = true
          f()
        }
      }
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          child.send(job)
          hooks.signal?.addEventListener('abort', onAbort, { once: true })
          if (hooks.signal?.aborted) onAbort()
        } else if (m.type === 'done') {
          Promise.resolve(hooks.beforeRelease?.(m.result)).then(
            () => settle(() => resolve(m.result)),
            (e: unknown) => settle(() => reject(e)),
          )
        }
        else if (m.type === 'failed') settle(() => reject(decodeError(m.error)))
        else hooks.onMessage?.(m, child)
      })
      child.on('error', (e) => settle(() => reject(workerError(e.message, {}, e))))
      child.on('exit', (code, sig) =>
        settle(() => reject(workerError(`the worker exited (${sig ?? code}) before it finished`, { exitCode: code, signal: sig }))),
      )
    })
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort)
    if (child.connected) child.send({ type: 'release' } satisfies ToWorker)
    if (child.exitCode === null && child.signalCode === null) await new Promise<void>((r) => child.once('exit', () => r()))
  }
}
