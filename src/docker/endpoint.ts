/** Where a Docker Engine API listens, as `DOCKER_HOST` and `dockerd -H` write it. */
import { ErrorCodes, ImagesmithError } from '../errors.js'

/** Docker's default when neither the `host` option nor `DOCKER_HOST` says otherwise. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock'

/** Where a Docker Engine API listens: a unix socket or plain TCP (`tcp://host:port`, as `dockerd -H` takes it). */
export type DockerEndpoint = { readonly kind: 'unix'; readonly socketPath: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number }

/**
 * `unix:///path`, a bare `/path`, `tcp://host:port` or `http://host:port`. TLS endpoints
 * (`DOCKER_TLS_VERIFY`, `https://`) and `ssh://` are refused by name rather than half-supported.
 */
export function parseDockerHost(host: string): DockerEndpoint {
  const bad = (why: string) => new ImagesmithError(ErrorCodes.OUTPUT_INVALID, `invalid docker host ${JSON.stringify(host)}: ${why}`, { host })
  if (host.startsWith('/')) return { kind: 'unix', socketPath: host }
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length)
    if (!socketPath.startsWith('/')) throw bad('a unix socket path must be absolute')
    return { kind: 'unix', socketPath }
  }
  const m = /^(?:tcp|http):\/\/([^/:]+|\[[0-9a-fA-F:]+\])(?::(\d+))?\/?$/.exec(host)
  if (m) return { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 2375 }
  throw bad('expected unix:///path/to/socket or tcp://host:port (TLS and ssh are not supported)')
}

export function describeEndpoint(e: DockerEndpoint): string {
  return e.kind === 'unix' ? `unix://${e.socketPath}` : `tcp://${e.host}:${e.port}`
}
