/**
 * Entry of the rootless worker (see namespace.ts): runs inside the build's user namespace as its
 * root, takes one job from the parent over IPC (a solve, or a prune or usage listing of the store), sends progress
 * and the result back and exits. FROM references are resolved by the parent (its registry session
 * and credentials stay there, and one tag resolves to one digest per build).
 *
 * If the parent goes away (killed, or it closed the channel), the worker aborts, and exiting runs
 * the cleanup registry: containers are killed and deleted, overlays unmounted, step dirs removed.
 * Its private mount namespace means no mount outlives it in any case.
 */
import type { Platform } from '../oci/types.js'
import { workerTable } from './worker-table.js'
import { cacheUsage, pruneCache } from '../store/gc.js'
import { Store } from '../store/store.js'
import { solve } from '../solver/solve.js'
import type { BaseImage, ExecContext } from '../solver/types.js'
import { decodeError, encodeError, encodeEvent, type FromWorker, type ToWorker } from './ipc.js'

const send = (m: FromWorker): Promise<void> =>
  new Promise((resolve) => {
    if (!process.connected) return resolve()
    process.send!(m, undefined, undefined, () => resolve())
  })

const controller = new AbortController()
const bases = new Map<number, { resolve: (b: BaseImage) => void; reject: (e: unknown) => void }>()
let nextBase = 1

function resolveBase(ref: string, platform: Platform): Promise<BaseImage> {
  const id = nextBase++
  return new Promise<BaseImage>((resolve, reject) => {
    bases.set(id, { resolve, reject })
    void send({ type: 'base', id, ref, platform })
  })
}

let releaseNow: () => void = () => undefined
/** Resolves when the parent says it holds the result's blobs itself (or is gone). */
const released = new Promise<void>((resolve) => {
  releaseNow = resolve
})

async function run(job: Extract<ToWorker, { type: 'solve' | 'prune' | 'usage' }>): Promise<void> {
  const store = new Store(job.type === 'solve' ? job.ctx.cacheDir : job.cacheDir)
  try {
    await store.init()
    if (job.type === 'prune') {
      await send({ type: 'done', result: await pruneCache(store, job.opts) })
      return
    }
    if (job.type === 'usage') {
      await send({ type: 'done', result: await cacheUsage(store) })
      return
    }
    await store.lease.begin()
    const { cacheDir: _, ...plain } = job.ctx
    const ctx: ExecContext = {
      ...plain,
      store,
      signal: controller.signal,
      resolveBase,
      emit: (event) => void send({ type: 'progress', event: encodeEvent(event) }),
    }
    const result = await solve(job.graph, workerTable, ctx, job.opts)
    await send({ type: 'done', result })
    // Until the parent holds the layers in its lease, this lease keeps a concurrent prune off them.
    await released
  } catch (e) {
    await send({ type: 'failed', error: encodeError(e) })
  } finally {
    await store.lease.release().catch(() => undefined)
  }
}

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'solve':
    case 'prune':
    case 'usage':
      void run(m).finally(() => process.disconnect())
      break
    case 'release':
      releaseNow()
      break
    case 'abort':
      controller.abort(m.reason)
      break
    case 'base': {
      const waiter = bases.get(m.id)
      bases.delete(m.id)
      if (m.error) waiter?.reject(decodeError(m.error))
      else waiter?.resolve(m.base!)
      break
    }
  }
})

// The parent is gone: nothing may keep running for it. exit() runs the cleanup registry.
process.on('disconnect', () => {
  releaseNow()
  controller.abort('the build process went away')
  setImmediate(() => process.exit(0))
})

void send({ type: 'ready' })
