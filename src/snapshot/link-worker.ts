/**
 * Hard links from a previous snapshot, made on a worker thread: a one-file rebuild of a 10k-file COPY
 * links 10k unchanged files (~0.08 s of link calls), which on the main thread
 * came on top of the layer writer's reads and hashes. Here they run beside them; `fs.promises` was
 * tried first and lost: the writer's synchronous pass starves its callbacks, and its reads queue
 * behind the links on libuv's four threads.
 *
 * The worker's code is inline CommonJS (no file to find from src/ or dist/). Links are sent in
 * batches; the first that fails ends its batch and fails {@link LinkWorker.done}.
 */
import type { PathLike } from 'node:fs'
import { Worker } from 'node:worker_threads'

type Job = readonly [from: PathLike, to: PathLike]

const BATCH = 512

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { linkSync } = require('node:fs')
parentPort.on('message', (batch) => {
  // A batch of plain names is one string (from, to, from, to, ... NUL-separated); one holding raw
  // names (Buffers) is an array of pairs.
  const jobs = []
  if (typeof batch === 'string') {
    const parts = batch.split('\0')
    for (let i = 0; i + 1 < parts.length; i += 2) jobs.push([parts[i], parts[i + 1]])
  } else jobs.push(...batch)
  for (const [from, to] of jobs) {
    try {
      linkSync(from, to)
    } catch (e) {
      parentPort.postMessage({ failed: String(from) + ': ' + (e && e.message) })
      return
    }
  }
  parentPort.postMessage({ done: jobs.length })
})
`

export class LinkWorker {
  #worker: Worker | undefined
  #batch: Job[] = []
  #sent = 0
  #answered = 0
  #failed: Error | undefined
  #waiting: (() => void) | undefined

  /** Queues a link of `from` as `to`; sent in batches. */
  link(from: PathLike, to: PathLike): void {
    if (this.#failed) return
    this.#batch.push([from, to])
    if (this.#batch.length >= BATCH) this.#flush()
  }

  /** Resolves once every queued link is made; rejects with the first that could not be. Ends the worker. */
  async done(): Promise<void> {
    this.#flush()
    if (this.#answered < this.#sent && !this.#failed) await new Promise<void>((resolve) => (this.#waiting = resolve))
    await this.#worker?.terminate()
    this.#worker = undefined
    if (this.#failed) throw this.#failed
  }

  #flush(): void {
    if (this.#batch.length === 0 || this.#failed) return
    const w = (this.#worker ??= this.#start())
    // One string crosses to the worker in one copy; 1,024 strings were half the cost of the links.
    const plain = this.#batch.every(([from, to]) => typeof from === 'string' && typeof to === 'string')
    w.postMessage(plain ? this.#batch.map(([from, to]) => `${from as string}\0${to as string}`).join('\0') : this.#batch)
    this.#batch = []
    this.#sent++
  }

  #start(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true })
    w.on('message', (m: { failed?: string }) => {
      this.#answered++
      if (m.failed !== undefined) this.#failed ??= new Error(m.failed)
      if (this.#failed || this.#answered === this.#sent) this.#waiting?.()
    })
    w.on('error', (e) => {
      this.#failed ??= e
      this.#waiting?.()
    })
    w.on('exit', () => {
      if (this.#answered < this.#sent) this.#failed ??= new Error('the link worker ended before its links were made')
      this.#waiting?.()
    })
    return w
  }
}
