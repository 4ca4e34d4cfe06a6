import { isIP } from 'node:net'
import { ErrorCodes, InvalidArgumentError } from '../errors.js'
import type { RegistryConfig } from './options.js'

/** One place a repository's content can be asked for: the registry itself or one of its mirrors. */
export interface Endpoint {
  /** `host[:port]` as used on the wire and for credentials: `registry-1.docker.io`, `127.0.0.1:5000` */
  readonly host: string
  /** `https://registry-1.docker.io`, `http://127.0.0.1:5000` */
  readonly base: string
  /** The registry named in the reference (`docker.io`), whose credentials apply at the origin. */
  readonly registry: string
  /** True for a mirror (pull-only, falls back to the next endpoint on failure). */
  readonly mirror: boolean
}

/** Where `docker.io` references are served: Docker's own constant. */
const DOCKER_HUB_HOST = 'registry-1.docker.io'

/** `localhost`, 127.0.0.0/8 and ::1, with or without a port. */
export function isLoopback(host: string): boolean {
  const name = hostName(host)
  if (name === 'localhost') return true
  if (isIP(name) === 4) return name.startsWith('127.')
  return isIP(name) === 6 && /^(?:0*:)*:?0*1$/.test(name)
}

/** `[::1]:5000` → `::1`; `127.0.0.1:5000` → `127.0.0.1`. */
export function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'))
  const colon = host.lastIndexOf(':')
  return colon > 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host
}

/** Plain HTTP only for loopback hosts and those the caller listed as insecure. */
export function schemeFor(host: string, cfg: Pick<RegistryConfig, 'insecure'>): 'http' | 'https' {
  return isLoopback(host) || cfg.insecure.includes(host) ? 'http' : 'https'
}

/** The registry a reference's domain names, as an endpoint (`docker.io` → registry-1.docker.io). */
export function originEndpoint(registry: string, cfg: Pick<RegistryConfig, 'insecure'>): Endpoint {
  const host = registry === 'docker.io' ? DOCKER_HUB_HOST : registry
  return { host, base: `${schemeFor(host, cfg)}://${host}`, registry, mirror: false }
}

/** Parses a mirror as written (`host[:port]`, or with an explicit `http(s)://`); a path is not supported. */
export function mirrorEndpoint(registry: string, text: string, cfg: Pick<RegistryConfig, 'insecure'>): Endpoint {
  const m = /^(?:(https?):\/\/)?([^/\s]+)\/?$/.exec(text.trim())
  if (!m) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid registry mirror ${JSON.stringify(text)} for ${registry}: expected host[:port]`, { registry, mirror: text })
  const host = m[2]!
  const scheme = schemeFor(host, cfg)
  if (m[1] === 'http' && scheme !== 'http') {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `registry mirror ${text} uses plain HTTP: list ${host} in the insecure registries to allow it`, { registry, mirror: text })
  }
  return { host, base: `${m[1] === 'https' ? 'https' : scheme}://${host}`, registry: host, mirror: true }
}

/** Mirrors of `registry` in order, then the registry itself. Pushes use {@link originEndpoint} alone. */
export function pullEndpoints(registry: string, cfg: Pick<RegistryConfig, 'insecure' | 'mirrors'>): Endpoint[] {
  const mirrors = cfg.mirrors[registry] ?? (registry === 'docker.io' ? cfg.mirrors['index.docker.io'] : undefined) ?? []
  return [...mirrors.map((m) => mirrorEndpoint(registry, m, cfg)), originEndpoint(registry, cfg)]
}

/** `docker.io=127.0.0.1:5000,quay.io=m:5000` (commas, semicolons or spaces between pairs) → a mirrors table. */
export function parseMirrorList(text: string, what: string): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const pair of text.split(/[,;\s]+/).filter(Boolean)) {
    const eq = pair.indexOf('=')
    if (eq <= 0 || eq === pair.length - 1) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid ${what} ${JSON.stringify(pair)}: expected REGISTRY=MIRROR (e.g. docker.io=127.0.0.1:5000)`, { value: pair })
    }
    const registry = pair.slice(0, eq)
    ;(out[registry] ??= []).push(pair.slice(eq + 1))
  }
  return out
}
