import { availableParallelism } from 'node:os'
import { abortError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'

/** The kinds of work a build bounds separately. */
export type PoolName = 'cpu' | 'run' | 'net'

/** A bounded pool of slots: `add` runs `fn` once a slot is free and holds the slot until it settles. */
export interface Pool {
  add<T>(fn: () => Promise<T>, opts?: { readonly signal?: AbortSignal }): Promise<T>
}

/**
 * The build's resource pools, handed to executors in {@link ExecContext.limits}. A vertex holds no
 * slot of its own: it takes one only around the work that costs the resource, so a sleeping RUN never
 * keeps a layer from being compressed and two layers never fight over one core.
 */
export interface Limits {
  /** Layer writing (tar + gzip), hashing. */
  readonly cpu: Pool
  /** RUN containers: a waiting container costs nothing but memory. */
  readonly run: Pool
  /** Registry transfers. */
  readonly net: Pool
}

export interface LimitsOptions {
  /** @default the number of cores */
  readonly cpu?: number
  /** @default max(8, cores × 4) */
  readonly run?: number
  /** @default 4 */
  readonly net?: number
}

/** One slot a vertex held, in ms since the solve started. */
export interface SlotRecord {
  readonly pool: PoolName
  readonly start: number
  readonly end: number
}

/** When a vertex ran (ms since the solve started) and which slots it held: the solver's own schedule. */
export interface ScheduleRecord {
  readonly vertex: Digest
  readonly description: string
  readonly start: number
  readonly end: number
  readonly slots: readonly SlotRecord[]
}

export function defaultLimits(): Required<LimitsOptions> {
  const cores = Math.max(1, availableParallelism())
  return { cpu: cores, run: Math.max(8, cores * 4), net: 4 }
}

export function createLimits(opts: LimitsOptions = {}): Limits {
  const d = defaultLimits()
  const pool = (n: number | undefined, fallback: number, name: string): Pool => {
    const concurrency = n ?? fallback
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`${name} limit must be a positive integer, got ${concurrency}`)
    return new Semaphore(concurrency)
  }
  return { cpu: pool(opts.cpu, d.cpu, 'cpu'), run: pool(opts.run, d.run, 'run'), net: pool(opts.net, d.net, 'net') }
}

/**
 * The limits one vertex sees: the build's pools, with every slot the vertex holds written to `slots`
 * (times relative to `t0`).
 */
export function recordingLimits(limits: Limits, slots: SlotRecord[], t0: number): Limits {
  const wrap = (pool: PoolName): Pool => ({
    add: (fn, o) =>
      limits[pool].add(async () => {
        const start = Date.now() - t0
        try {
          return await fn()
        } finally {
          slots.push({ pool, start, end: Date.now() - t0 })
        }
      }, o),
  })
  return { cpu: wrap('cpu'), run: wrap('run'), net: wrap('net') }
}

/** Runs `fn` in a slot of `pool` when the context has limits (a context made outside a solve has none). */
export function inSlot<T>(limits: Limits | undefined, pool: PoolName, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return limits ? limits[pool].add(fn, signal ? { signal } : {}) : fn()
}

/** writeLayer's `cpuSlot` option for a context's limits: the layer write takes a CPU slot. */
export function cpuSlotOf(limits: Limits | undefined, signal?: AbortSignal): { cpuSlot?: <T>(fn: () => Promise<T>) => Promise<T> } {
  return limits ? { cpuSlot: (fn) => limits.cpu.add(fn, signal ? { signal } : {}) } : {}
}

/**
 * A pool of slots. The signal only withdraws a caller still waiting for a slot: work that holds one
 * runs to its own end (p-queue's signal would reject at once and let the caller clean up while a
 * container is still being killed).
 */
class Semaphore implements Pool {
  #free: number
  readonly #waiting: (() => void)[] = []

  constructor(size: number) {
    this.#free = size
  }

  async add<T>(fn: () => Promise<T>, opts: { readonly signal?: AbortSignal } = {}): Promise<T> {
    await this.#acquire(opts.signal)
    try {
      return await fn()
    } finally {
      const next = this.#waiting.shift()
      if (next) next()
      else this.#free++
    }
  }

  #acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    if (this.#free > 0) {
      this.#free--
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = () => {
        const i = this.#waiting.indexOf(grant)
        if (i >= 0) this.#waiting.splice(i, 1)
        reject(abortError(signal!))
      }
      this.#waiting.push(grant)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
