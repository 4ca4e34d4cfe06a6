/**
 * Calls to a build engine's API (Docker Engine, Podman's compatible service) over any
 * {@link EngineEndpoint}: the request with a streamed body, the JSON-lines answer read line by
 * line (bounded), the API version checked, and a dead endpoint reported as ENGINE_UNREACHABLE.
 */
import type { IncomingMessage } from 'node:http'
import { StringDecoder } from 'node:string_decoder'
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { sendBody } from './client.js'
import { describeEngine, engineHttpRequest, type EngineEndpoint } from './engine-host.js'

export interface EngineCall {
  readonly method: 'GET' | 'POST'
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: Iterable<Buffer> | AsyncIterable<Buffer>
  readonly signal?: AbortSignal
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'])

/** Sends the request (streaming `body`) and resolves with the engine's response, whatever its status. */
export async function engineCall(e: EngineEndpoint, call: EngineCall): Promise<IncomingMessage> {
  const req = engineHttpRequest(e, {
    method: call.method,
    path: call.path,
    headers: { ...(call.body ? { 'Content-Type': 'application/x-tar', 'Transfer-Encoding': 'chunked' } : {}), ...call.headers },
    ...(call.signal ? { signal: call.signal } : {}),
  })
  try {
    return await sendBody(req, call.body)
  } catch (err) {
    throwIfAborted(call.signal)
    throw asUnreachable(err, e)
  }
}

/** A connection failure as ENGINE_UNREACHABLE naming the host; anything else as it is. */
export function asUnreachable(err: unknown, e: EngineEndpoint): unknown {
  if (err instanceof ImagesmithError) return err
  const errno = (err as NodeJS.ErrnoException).code
  const tlsFailure = typeof errno === 'string' && (errno.startsWith('ERR_TLS') || errno.includes('CERT') || errno === 'EPROTO' || errno.startsWith('ERR_SSL'))
  if (typeof errno === 'string' && (UNREACHABLE.has(errno) || tlsFailure)) {
    const where = describeEngine(e)
    return new ImagesmithError(
      ErrorCodes.ENGINE_UNREACHABLE,
      `cannot reach a build engine at ${where} (${errno}: ${(err as Error).message.slice(0, 300)}): is the daemon running there? Set DOCKER_HOST or --engine docker,host=…`,
      { host: where, errno },
      { cause: err },
    )
  }
  return err
}

/** Longest JSON line the engine's streams are read in; longer lines (none are) are cut and skipped. */
export const MAX_LINE = 16 << 20

/** The response's JSON messages in order, one a line; a line that is not JSON is skipped. */
export async function* jsonMessages(res: IncomingMessage): AsyncGenerator<Record<string, unknown>> {
  // A character split between chunks is joined by the decoder, not garbled.
  const decoder = new StringDecoder('utf8')
  let pending = ''
  let skipping = false
  for await (const chunk of res as AsyncIterable<Buffer>) {
    const text = pending + decoder.write(chunk)
    let from = 0
    let nl: number
    while ((nl = text.indexOf('\n', from)) >= 0) {
      const line = text.slice(from, nl)
      from = nl + 1
      if (skipping || line.length > MAX_LINE) {
        skipping = false
        continue
      }
      const m = parseLine(line)
      if (m) yield m
    }
    pending = text.slice(from)
    if (pending.length > MAX_LINE) {
      skipping = true
      pending = ''
    }
  }
  pending += decoder.end()
  const last = skipping ? undefined : parseLine(pending)
  if (last) yield last
}

function parseLine(line: string): Record<string, unknown> | undefined {
  const t = line.trim()
  if (t === '' || t[0] !== '{') return undefined
  try {
    const v = JSON.parse(t) as unknown
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** A whole small body (error answers, /version), at most `limit` bytes kept. */
export async function readSmall(res: IncomingMessage, limit = 1 << 20): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of res as AsyncIterable<Buffer>) {
    if (n < limit) chunks.push(c.subarray(0, limit - n))
    n += c.length
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The engine's message of a non-2xx answer (`{"message": …}`), else its text. */
export function errorMessage(body: string): string {
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message
    if (typeof m === 'string') return m
  } catch {
    /* not JSON */
  }
  return body.trim().slice(0, 1000)
}

export interface EngineVersion {
  readonly apiVersion: string
  readonly version: string
  /** Podman's service says so in its components; its /build runs buildah. */
  readonly podman: boolean
}

/** How long the first call may wait for an answer: a host that takes a connection and says nothing is not an engine. */
export const VERSION_TIMEOUT_MS = 30_000

/** `GET /version`; API versions compare as major.minor numbers. */
export async function engineVersion(e: EngineEndpoint, signal?: AbortSignal, timeoutMs = VERSION_TIMEOUT_MS): Promise<EngineVersion> {
  const deadline = AbortSignal.timeout(timeoutMs)
  const both = signal ? AbortSignal.any([signal, deadline]) : deadline
  let res: IncomingMessage
  let body: string
  try {
    res = await engineCall(e, { method: 'GET', path: '/version', signal: both })
    body = await readSmall(res)
  } catch (err) {
    throwIfAborted(signal)
    if (deadline.aborted) {
      throw new ImagesmithError(ErrorCodes.ENGINE_UNREACHABLE, `the build engine at ${describeEngine(e)} did not answer /version within ${timeoutMs / 1000} s`, { host: describeEngine(e), timeoutMs }, { cause: err })
    }
    throw asUnreachable(err, e)
  }
  if ((res.statusCode ?? 0) !== 200) {
    // Go's TLS server answers a plain request with this text: the engine wants TLS.
    const hint = body.includes('HTTP request to an HTTPS server') ? ' (the engine speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory of ca.pem, cert.pem, key.pem)' : ''
    throw new ImagesmithError(ErrorCodes.ENGINE_FAILED, `the engine at ${describeEngine(e)} answered /version with HTTP ${res.statusCode}: ${errorMessage(body)}${hint}`, { host: describeEngine(e), status: res.statusCode })
  }
  let v: { ApiVersion?: unknown; Version?: unknown; Components?: { Name?: unknown }[] }
  try {
    v = JSON.parse(body) as typeof v
  } catch {
    throw new ImagesmithError(ErrorCodes.ENGINE_FAILED, `the engine at ${describeEngine(e)} answered /version with something other than JSON`, { host: describeEngine(e) })
  }
  const components = Array.isArray(v.Components) ? v.Components : []
  return {
    apiVersion: typeof v.ApiVersion === 'string' ? v.ApiVersion : '0',
    version: typeof v.Version === 'string' ? v.Version : '',
    podman: components.some((c) => typeof c?.Name === 'string' && /podman/i.test(c.Name)),
  }
}

/** `1.39` < `1.41` < `1.100`; anything unparsable is 0. */
export function compareApi(a: string, b: string): number {
  const parse = (s: string) => {
    const [maj, min] = s.split('.', 2)
    const n = (x: string | undefined) => (x !== undefined && /^\d{1,6}$/.test(x) ? Number(x) : 0)
    return [n(maj), n(min)] as const
  }
  const [a1, a2] = parse(a)
  const [b1, b2] = parse(b)
  return a1 !== b1 ? a1 - b1 : a2 - b2
}
