/**
 * A client of the Docker Engine API (also Podman's compatible service), shared by the `docker`
 * output and drivers that hand a build to an engine: plain HTTP over a unix socket or TCP.
 */
import { once } from 'node:events'
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http'
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { describeEndpoint, type DockerEndpoint } from './endpoint.js'
import { nodeHttp } from '../util/net-modules.js'

/** An HTTP request to the engine API; the caller writes the body and ends it. */
export function engineRequest(endpoint: DockerEndpoint, opts: RequestOptions): ClientRequest {
  const where = endpoint.kind === 'unix' ? { socketPath: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port }
  // Host header: the engine ignores it on a socket, but Go's HTTP server wants one.
  return nodeHttp().request({ ...where, ...opts, headers: { Host: 'docker', ...opts.headers } })
}

/**
 * Streams `body` into `req` and resolves with the engine's response, whatever its status. The engine
 * may answer (and close) before the body is sent: writing stops then, and its answer is read. On
 * any failure the request is destroyed and the error passed on.
 */
export async function sendBody(req: ClientRequest, body: Iterable<Buffer> | AsyncIterable<Buffer> | undefined): Promise<IncomingMessage> {
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
  })
  let answered = false
  void response.then(() => (answered = true), () => (answered = true))
  try {
    if (body) {
      for await (const chunk of body) {
        if (answered || req.destroyed) break
        if (!req.write(chunk)) await Promise.race([once(req, 'drain'), response])
      }
    }
    req.end()
    return await response
  } catch (e) {
    req.destroy()
    throw e
  }
}

/** Reads a whole response body (the engine's answers to /images/load are small JSON lines). */
export async function readBody(res: IncomingMessage, limit = 4 << 20): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length
    if (n <= limit) chunks.push(c)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * `POST /images/load` with a `docker save`-shaped tar streamed from `chunks`, as `docker load` sends
 * it. The engine's refusal is DOCKER_LOAD_FAILED with its message; no engine there is DOCKER_UNREACHABLE.
 */
export async function loadImage(endpoint: DockerEndpoint, chunks: Iterable<Buffer>, signal?: AbortSignal): Promise<void> {
  const where = describeEndpoint(endpoint)
  const req = engineRequest(endpoint, {
    method: 'POST',
    path: '/images/load',
    headers: { 'Content-Type': 'application/x-tar', 'Transfer-Encoding': 'chunked' },
    signal: signal,
  })
  try {
    const res = await sendBody(req, chunks)
    const body = await readBody(res)
    const failure = loadFailure(res.statusCode ?? 0, body)
    if (failure !== undefined) {
      throw new ImagesmithError(ErrorCodes.DOCKER_LOAD_FAILED, `the engine at ${where} refused the image: ${failure}`, { host: where, status: res.statusCode })
    }
  } catch (e) {
    req.destroy()
    throwIfAborted(signal)
    if (e instanceof ImagesmithError) throw e
    const errno = (e as NodeJS.ErrnoException).code
    if (errno === 'ENOENT' || errno === 'ECONNREFUSED' || errno === 'EACCES' || errno === 'ENOTFOUND') {
      throw new ImagesmithError(
        ErrorCodes.DOCKER_UNREACHABLE,
        `cannot reach a Docker engine at ${where} (${errno}): is the daemon running? Set DOCKER_HOST or the docker output's host option`,
        { host: where },
        { cause: e },
      )
    }
    throw new ImagesmithError(ErrorCodes.DOCKER_LOAD_FAILED, `loading the image into ${where} failed: ${(e as Error).message}`, { host: where }, { cause: e })
  }
}

/**
 * The engine answers 200 with a stream of JSON messages, one of which may carry `error`
 * (docker), or a non-2xx status with `{ message }` (docker and podman).
 */
function loadFailure(status: number, body: string): string | undefined {
  if (status < 200 || status >= 300) {
    try {
      const msg = (JSON.parse(body) as { message?: string }).message
      return `HTTP ${status}: ${msg ?? body.trim()}`
    } catch {
      return `HTTP ${status}: ${body.trim().slice(0, 500)}`
    }
  }
  for (const line of body.split('\n')) {
    if (!line.trim()) continue
    try {
      const m = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } }
      if (m.error || m.errorDetail) return m.errorDetail?.message ?? m.error
    } catch {
      /* a non-JSON line is progress text, not an error */
    }
  }
  return undefined
}
