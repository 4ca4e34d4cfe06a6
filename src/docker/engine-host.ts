/**
 * Where a build engine's API listens, as the docker CLI reads `DOCKER_HOST`: a unix socket,
 * `tcp://` (TLS when `DOCKER_TLS_VERIFY`/`DOCKER_TLS` say so, with `ca.pem`, `cert.pem`, `key.pem`
 * from `DOCKER_CERT_PATH`), or `ssh://[user@]host[:port]` through `ssh … docker system dial-stdio`.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { ClientRequest, RequestOptions } from 'node:http'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { Duplex } from 'node:stream'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { nodeHttp, nodeHttps } from '../util/net-modules.js'

/** TLS as the docker CLI sets it up from its environment. */
export interface EngineTls {
  /** Verify the engine's certificate against `ca.pem` (`DOCKER_TLS_VERIFY`). */
  readonly verify: boolean
  /** Directory of `ca.pem`, `cert.pem`, `key.pem` (`DOCKER_CERT_PATH`, else ~/.docker). */
  readonly certPath: string
}

export type EngineEndpoint =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly tls?: EngineTls }
  | { readonly kind: 'ssh'; readonly user?: string; readonly host: string; readonly port?: number }

/** Bounded: a host string is a URL, not a document. */
const MAX_HOST = 2048

/** `unix:///path`, `/path`, `tcp://host[:port]` (2376 with TLS, else 2375), `ssh://[user@]host[:port]`. */
export function parseEngineHost(host: string, tls?: EngineTls): EngineEndpoint {
  const bad = (why: string) => new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `invalid engine host ${JSON.stringify(host.slice(0, 200))}: ${why}`, { option: 'engine.host', host })
  if (typeof host !== 'string' || host.length === 0 || host.length > MAX_HOST) throw bad('expected unix:///path, tcp://host:port or ssh://user@host')
  if (host.startsWith('/')) return { kind: 'unix', socketPath: host }
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length)
    if (!socketPath.startsWith('/')) throw bad('a unix socket path must be absolute')
    return { kind: 'unix', socketPath }
  }
  let url: URL
  try {
    url = new URL(host)
  } catch {
    throw bad('expected unix:///path, tcp://host:port or ssh://user@host')
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) throw bad('a host has no path or query')
  const hostname = url.hostname.replace(/^\[|\]$/g, '')
  if (hostname === '') throw bad('no host name')
  const port = url.port === '' ? undefined : Number(url.port)
  if (url.protocol === 'ssh:') {
    if (url.password) throw bad('ssh passwords are not taken: use an agent or a key')
    return { kind: 'ssh', host: hostname, ...(url.username ? { user: decodeURIComponent(url.username) } : {}), ...(port !== undefined ? { port } : {}) }
  }
  if (url.protocol === 'tcp:' || url.protocol === 'http:' || url.protocol === 'https:') {
    if (url.username) throw bad('a tcp host has no user')
    const useTls = tls ?? (url.protocol === 'https:' ? { verify: true, certPath: '' } : undefined)
    return { kind: 'tcp', host: hostname, port: port ?? (useTls ? 2376 : 2375), ...(useTls ? { tls: useTls } : {}) }
  }
  throw bad(`unknown scheme ${url.protocol.replace(/:$/, '')}`)
}

export function describeEngine(e: EngineEndpoint): string {
  if (e.kind === 'unix') return `unix://${e.socketPath}`
  if (e.kind === 'ssh') return `ssh://${e.user ? `${e.user}@` : ''}${e.host}${e.port !== undefined ? `:${e.port}` : ''}`
  return `tcp://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`
}

/** An HTTP request to the engine; the caller writes the body and ends it. */
export function engineHttpRequest(e: EngineEndpoint, opts: RequestOptions): ClientRequest {
  // Host header: the engine ignores it on a socket, but Go's HTTP server wants one.
  const headers = { Host: 'docker', ...opts.headers }
  if (e.kind === 'unix') return nodeHttp().request({ ...opts, socketPath: e.socketPath, headers })
  // No agent: Node uses createConnection only when none is given (one ssh per request, as the CLI's dialer).
  if (e.kind === 'ssh') return nodeHttp().request({ ...opts, headers, createConnection: () => dialStdio(e) })
  if (!e.tls) return nodeHttp().request({ ...opts, host: e.host, port: e.port, headers })
  const file = (name: string): Buffer | undefined => {
    try {
      return readFileSync(join(e.tls!.certPath, name))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }
  const ca = file('ca.pem')
  const cert = file('cert.pem')
  const key = file('key.pem')
  return nodeHttps().request({
    ...opts,
    host: e.host,
    port: e.port,
    headers: { ...headers, Host: e.host },
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    rejectUnauthorized: e.tls.verify,
    // The name is checked against the certificate as DOCKER_HOST gives it; an IP address is matched
    // against the certificate's IP entries, and is no SNI name (RFC 6066).
    ...(isIP(e.host) ? {} : { servername: e.host }),
  })
}

/**
 * As the docker CLI's ssh connection helper: `ssh [-l user] [-p port] -- host docker system
 * dial-stdio`, whose stdin/stdout carry one HTTP connection. BatchMode: a prompt would hang the build.
 */
function dialStdio(e: Extract<EngineEndpoint, { kind: 'ssh' }>): Duplex {
  const args = ['-o', 'BatchMode=yes', ...(e.user ? ['-l', e.user] : []), ...(e.port !== undefined ? ['-p', String(e.port)] : []), '--', e.host, 'docker', 'system', 'dial-stdio']
  const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString('utf8')
  })
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout })
  child.once('error', (err) => duplex.destroy(err))
  child.once('exit', (code) => {
    if (code !== 0 && code !== null) {
      const err = Object.assign(new Error(`ssh to ${describeEngine(e)} exited with ${code}: ${stderr.trim().slice(0, 1000)}`), { code: 'ECONNREFUSED' })
      duplex.destroy(err)
    }
  })
  duplex.once('close', () => child.kill())
  return duplex
}
