import { readFileSync } from 'node:fs'
import type { Agent as HttpAgent, IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Agent as HttpsAgent } from 'node:https'
import type { Readable } from 'node:stream'
import { ErrorCodes, ImagesmithError, abortError } from '../errors.js'
import { nodeHttp, nodeHttps, nodeTls } from '../util/net-modules.js'

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'

export interface HttpRequest {
  readonly method: HttpMethod
  readonly url: string
  readonly headers?: Readonly<Record<string, string>>
  /** A buffer, or an opener called once per attempt (a body stream cannot be replayed). */
  readonly body?: Buffer | (() => Readable)
  /** Follow 30x for GET/HEAD. @default true */
  readonly followRedirects?: boolean
  /** Retry 5xx, 429 and dropped connections with backoff. @default true */
  readonly retry?: boolean
  /**
   * The whole exchange (connect, headers, body) must finish within this many ms, however steadily
   * bytes trickle in; past it the request fails with REGISTRY_TIMEOUT and is not retried.
   * @default the transport's `deadlineMs`; none for a streamed body (uploads: the idle timeout still applies)
   */
  readonly deadlineMs?: number
  readonly signal?: AbortSignal
}

export interface HttpResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The URL that answered (after redirects). */
  readonly url: string
  readonly body: IncomingMessage
}

export interface TransportOptions {
  /** Extra PEM CA file, trusted next to the system's. */
  readonly caFile?: string
  /** Attempts after the first. @default 4 */
  readonly retries?: number
  /** First backoff delay, doubled per attempt. @default 200 */
  readonly backoffMs?: number
  /** A connection silent this long (connecting or mid-body) counts as dropped. @default 30000 */
  readonly idleTimeoutMs?: number
  /** Deadline of one request (manifests, tokens, API calls); blob downloads add time by size. @default 120000 */
  readonly deadlineMs?: number
  /** A Retry-After longer than this is not waited for: the request fails with REGISTRY_ERROR naming the wait. @default 30000 */
  readonly maxRetryAfterMs?: number
}

const SYSTEM_CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem']
const MAX_REDIRECTS = 10
/** Connection errors worth another try: the registry was there and the line broke. */
const TRANSIENT_ERRNOS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET'])

/** The URL without its query (signed storage URLs carry credentials there) and never with userinfo. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return '(invalid url)'
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal))
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(t)
      reject(abortError(signal!))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** A connection-level failure (refused, reset, TLS), typed; `transient` says whether a retry may help. */
export function unreachable(url: string, cause: unknown, attempts: number): ImagesmithError {
  const errno = (cause as NodeJS.ErrnoException)?.code
  const host = hostOf(url)
  return new ImagesmithError(
    ErrorCodes.REGISTRY_UNREACHABLE,
    `registry ${host} unreachable: ${errno ?? (cause as Error)?.message ?? String(cause)} (${safeUrl(url)}, ${attempts} attempt${attempts === 1 ? '' : 's'})`,
    { registry: host, url: safeUrl(url), errno, attempts },
    { cause },
  )
}

export function isTransient(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code
  return (code !== undefined && TRANSIENT_ERRNOS.has(code)) || /socket hang up|aborted|premature close/i.test((e as Error)?.message ?? '')
}

/** The wait a Retry-After header asks for (seconds or an HTTP date), in ms; undefined when absent or unreadable. */
export function retryAfterMs(retryAfter?: string | string[]): number | undefined {
  const ra = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter
  if (!ra) return undefined
  const secs = Number(ra)
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(ra) - Date.now()
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined
}

/**
 * Delay before attempt `n` (1-based): what Retry-After asks for when the server sent one (the
 * caller decides whether that is too long), else exponential with jitter.
 */
export function backoffDelay(n: number, baseMs: number, retryAfter?: string | string[]): number {
  return retryAfterMs(retryAfter) ?? baseMs * 2 ** (n - 1) * (0.75 + Math.random() * 0.5)
}

/** The request did not finish within its deadline (a server trickling bytes): not retried. */
export function deadlineError(url: string, deadlineMs: number): ImagesmithError {
  const host = hostOf(url)
  return new ImagesmithError(ErrorCodes.REGISTRY_TIMEOUT, `registry ${host} did not finish answering ${safeUrl(url)} within ${Math.round(deadlineMs / 1000)} s`, {
    registry: host,
    url: safeUrl(url),
    deadlineMs,
  })
}

function hostOf(url: string): string {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

/**
 * HTTP(S) for the distribution API over node:http: TLS with the system's CAs plus an optional CA
 * file, keep-alive agents, retries with backoff (5xx, 429 with Retry-After, dropped connections),
 * and redirects that never carry Authorization to another host. Which scheme a host gets is
 * decided by the caller (see endpoints.ts). Every wait is bounded: a silent connection by the idle
 * timeout, a trickling one by the request's deadline, a Retry-After by `maxRetryAfterMs`.
 */
export class Transport {
  readonly retries: number
  readonly backoffMs: number
  readonly idleTimeoutMs: number
  readonly deadlineMs: number
  readonly maxRetryAfterMs: number
  // Made at the first request (util/net-modules.ts); the CA file is read at once, so a bad one fails here.
  #http: HttpAgent | undefined
  #https: HttpsAgent | undefined
  readonly #extraCa: string | undefined
  #requests = 0

  constructor(opts: TransportOptions = {}) {
    this.retries = opts.retries ?? 4
    this.backoffMs = opts.backoffMs ?? 200
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000
    this.deadlineMs = opts.deadlineMs ?? 120_000
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 30_000
    this.#extraCa = opts.caFile === undefined ? undefined : readCaFile(opts.caFile)
  }

  /** Requests sent (each attempt and redirect counts): for tests and benchmarks. */
  get requestCount(): number {
    return this.#requests
  }

  /** Sends `req`, retrying as configured. The caller reads or discards `body`. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const attempts = req.retry === false ? 1 : this.retries + 1
    let lastError: unknown
    for (let n = 1; n <= attempts; n++) {
      if (req.signal?.aborted) throw abortError(req.signal)
      let res: HttpResponse
      try {
        res = await this.#follow(req)
      } catch (e) {
        if (e instanceof ImagesmithError) throw e
        lastError = e
        if (!isTransient(e) || n === attempts) throw unreachable(req.url, e, n)
        await sleep(backoffDelay(n, this.backoffMs), req.signal)
        continue
      }
      if ((res.status >= 500 || res.status === 429) && n < attempts) {
        res.body.resume()
        const wait = backoffDelay(n, this.backoffMs, res.headers['retry-after'])
        if (wait > this.maxRetryAfterMs) throw retryAfterTooLong(res, wait, this.maxRetryAfterMs)
        await sleep(wait, req.signal)
        continue
      }
      return res
    }
    throw unreachable(req.url, lastError, attempts)
  }

  async #follow(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url
    let headers = { ...(req.headers ?? {}) }
    const origin = new URL(url).origin
    // One deadline for the attempt, redirects included.
    const deadlineMs = req.deadlineMs ?? (typeof req.body === 'function' ? undefined : this.deadlineMs)
    const deadline = deadlineMs === undefined ? undefined : { at: Date.now() + deadlineMs, ms: deadlineMs }
    for (let hop = 0; ; hop++) {
      const res = await this.#once(req.method, url, headers, req.body, req.signal, deadline)
      const location = res.headers.location
      const redirect = [301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && location && req.followRedirects !== false && (req.method === 'GET' || req.method === 'HEAD')
      if (!redirect) return { status: res.statusCode ?? 0, headers: res.headers, url, body: res }
      res.resume()
      if (hop >= MAX_REDIRECTS) throw new ImagesmithError(ErrorCodes.REGISTRY_ERROR, `too many redirects from ${safeUrl(req.url)}`, { url: safeUrl(req.url) })
      url = new URL(location, url).toString()
      // Blob GETs redirect to object storage: the registry's credentials stay with the registry
      // (another host, or the same host over another scheme, never gets them).
      if (new URL(url).origin !== origin) {
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'))
      }
    }
  }

  #once(method: HttpMethod, url: string, headers: Record<string, string>, body: HttpRequest['body'], signal?: AbortSignal, deadline?: { at: number; ms: number }): Promise<IncomingMessage> {
    this.#requests++
    const u = new URL(url)
    const mod = u.protocol === 'https:' ? nodeHttps() : nodeHttp()
    const agent = u.protocol === 'https:'
      ? (this.#https ??= new (nodeHttps().Agent)({ keepAlive: true, maxSockets: 16, ca: trustedCas(this.#extraCa) }))
      : (this.#http ??= new (nodeHttp().Agent)({ keepAlive: true, maxSockets: 16 }))
    return new Promise((resolve, reject) => {
      let response: IncomingMessage | undefined
      const r = mod.request(u, { method, headers: { 'user-agent': 'imagesmith', ...headers }, agent, signal }, (res) => {
        response = res
        if (timer) {
          res.once('end', () => clearTimeout(timer))
          res.once('close', () => clearTimeout(timer))
        }
        resolve(res)
      })
      // The idle timeout never fires on a server sending a byte now and then (headers or body): the
      // deadline covers the whole exchange, also the body the caller reads after this resolves.
      const timer = deadline
        ? setTimeout(() => {
            const err = deadlineError(url, deadline.ms)
            response?.destroy(err)
            r.destroy(err)
          }, Math.max(0, deadline.at - Date.now()))
        : undefined
      timer?.unref()
      r.on('error', (e) => {
        if (!response) clearTimeout(timer)
        reject(signal?.aborted ? abortError(signal) : e)
      })
      // A registry that stops answering (connect or mid-body) is a dropped connection: retried.
      r.setTimeout(this.idleTimeoutMs, () => r.destroy(Object.assign(new Error(`no data for ${this.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })))
      if (body === undefined) r.end()
      else if (Buffer.isBuffer(body)) r.end(body)
      else {
        const src = body()
        src.on('error', (e) => r.destroy(e))
        src.pipe(r)
      }
    })
  }

  close(): void {
    this.#http?.destroy()
    this.#https?.destroy()
  }
}

/** Node's bundled roots, the system bundle (where the admin's CAs go) and the caller's file. */
function trustedCas(extra: string | undefined): string[] {
  const cas = [...nodeTls().rootCertificates]
  for (const f of SYSTEM_CA_BUNDLES) {
    try {
      cas.push(readFileSync(f, 'utf8'))
      break
    } catch {
      // not on this system
    }
  }
  if (extra !== undefined) cas.push(extra)
  return cas
}

function readCaFile(caFile: string): string {
  try {
    return readFileSync(caFile, 'utf8')
  } catch (e) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `cannot read the registry CA file ${caFile}: ${(e as Error).message}`, { caFile }, { cause: e })
  }
}

/** A Retry-After beyond what is waited for: fails at once, naming the wait asked for. */
function retryAfterTooLong(res: HttpResponse, waitMs: number, maxMs: number): ImagesmithError {
  const host = hostOf(res.url)
  return new ImagesmithError(
    ErrorCodes.REGISTRY_ERROR,
    `registry ${host} answered ${res.status} and asks to retry after ${Math.round(waitMs / 1000)} s; imagesmith waits at most ${Math.round(maxMs / 1000)} s (${safeUrl(res.url)})`,
    { registry: host, status: res.status, url: safeUrl(res.url), retryAfterMs: waitMs, maxRetryAfterMs: maxMs },
  )
}

/** Reads a response body up to `max` bytes (manifests, errors, tokens). */
export async function readBody(res: HttpResponse, max = 8 << 20): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of res.body as AsyncIterable<Buffer>) {
    size += c.length
    if (size > max) {
      res.body.destroy()
      throw new ImagesmithError(ErrorCodes.REGISTRY_ERROR, `response from ${safeUrl(res.url)} is larger than ${max} bytes`, { url: safeUrl(res.url) })
    }
    chunks.push(c)
  }
  return Buffer.concat(chunks)
}
