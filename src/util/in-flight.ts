import { abortError } from '../errors.js'

interface Flight<T> {
  readonly promise: Promise<T>
  readonly controller: AbortController
  waiters: number
}

/**
 * Identical work in flight, done once: a caller asking for a key that is under way waits for that
 * run instead of starting its own. Each caller keeps its own signal: an aborted caller stops
 * waiting at once and the others go on; the shared run is aborted (its signal) only when every
 * caller waiting for it has given up, and is then forgotten, so a later caller starts afresh. A
 * settled run is forgotten too: this merges work in flight, it caches nothing.
 */
export class InFlight<T> {
  readonly #flights = new Map<string, Flight<T>>()

  /** Runs in flight now (for tests and diagnostics). */
  get size(): number {
    return this.#flights.size
  }

  run(key: string, work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    let flight = this.#flights.get(key)
    if (!flight) {
      const controller = new AbortController()
      const promise = Promise.resolve().then(() => work(controller.signal))
      const started: Flight<T> = { promise, controller, waiters: 0 }
      const forget = () => {
        if (this.#flights.get(key) === started) this.#flights.delete(key)
      }
      promise.then(forget, forget)
      flight = started
      this.#flights.set(key, flight)
    }
    const f = flight
    f.waiters++
    if (!signal) return f.promise
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        reject(abortError(signal))
        if (--f.waiters === 0) {
          // Nobody waits any more: stop the work and let a later caller start its own.
          if (this.#flights.get(key) === f) this.#flights.delete(key)
          f.controller.abort(signal.reason)
        }
      }
      signal.addEventListener('abort', onAbort, { once: true })
      f.promise.then(
        (v) => {
          signal.removeEventListener('abort', onAbort)
          resolve(v)
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort)
          reject(e)
        },
      )
    })
  }
}
