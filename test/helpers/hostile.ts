/**
 * A small hostile HTTP server on loopback: not a registry, but whatever a test makes it answer
 * (redirect targets that challenge for credentials, slow or endless answers, absurd documents).
 * Every request is recorded with its headers; timers a handler starts are stopped with the server.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface HostileRequest {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
}

export interface HostileServer {
  /** `127.0.0.1:PORT` */
  readonly host: string
  readonly url: string
  readonly requests: HostileRequest[]
  /** Calls `fn` every `ms` until the server stops or the request's socket closes. */
  every(req: IncomingMessage, ms: number, fn: () => void): void
  stop(): Promise<void>
}

export async function startHostile(handle: (req: IncomingMessage, res: ServerResponse, srv: HostileServer) => void): Promise<HostileServer> {
  const timers = new Set<NodeJS.Timeout>()
  const server = http.createServer((req, res) => {
    srv.requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers })
    handle(req, res, srv)
  })
  const srv: HostileServer = {
    host: '',
    url: '',
    requests: [],
    every(req, ms, fn) {
      const t = setInterval(() => {
        if (req.socket.destroyed) return void (clearInterval(t), timers.delete(t))
        fn()
      }, ms)
      timers.add(t)
      req.socket.once('close', () => (clearInterval(t), timers.delete(t)))
    },
    async stop() {
      for (const t of timers) clearInterval(t)
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  Object.assign(srv, { host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}` })
  return srv
}
