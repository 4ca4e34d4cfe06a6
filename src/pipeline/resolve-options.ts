import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { ErrorCodes, InvalidArgumentError } from '../errors.js'
import { formatPlatform, normalizePlatform, parsePlatform } from '../oci/platform.js'
import { DEFAULT_DOCKER_HOST } from '../docker/endpoint.js'
import type { Platform } from '../oci/types.js'
import type { BuildOptions } from './options.js'
import { parseMirrorList, pullEndpoints } from '../registry/endpoints.js'
import type { RegistryConfig, RegistryOptions } from '../registry/options.js'
import { defaultCacheDir } from '../store/default-dir.js'
import { resolveAttest, type ResolvedAttest } from '../attest/options.js'

/**
 * The one place that reads the environment (IMAGESMITH_CACHE, XDG_CACHE_HOME, SOURCE_DATE_EPOCH, DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH,
 * IMAGESMITH_REGISTRY_MIRRORS, DOCKER_CONFIG):
 * everything below receives plain, resolved options.
 */
export interface ResolvedBuildOptions {
  readonly contextDir: string
  readonly cacheDir: string
  readonly epoch: number
  readonly clampRunMtimes: boolean
  readonly created: string
  /** The target platform; of a multi-platform build, the first. */
  readonly platform: Platform
  /** Every target platform, each once: more than one makes an image index. */
  readonly platforms: readonly Platform[]
  readonly network: 'default' | 'none' | 'host'
  readonly allow: readonly Entitlement[]
  /** SSH agent socket paths by id, absolute. */
  readonly ssh: Readonly<Record<string, string>>
  /** The `docker` output's engine when it names no host: $DOCKER_HOST, else Docker's default socket. */
  readonly dockerHost: string
  /** TLS for a `tcp://` engine, as the docker CLI reads it: `DOCKER_TLS_VERIFY` (verify) or `DOCKER_TLS`, certificates in `DOCKER_CERT_PATH` (else ~/.docker). */
  readonly engineTls?: { readonly verify: boolean; readonly certPath: string }
  readonly registry: RegistryConfig
  /** What `attest` asks for, checked; absent when nothing is. */
  readonly attest?: ResolvedAttest
}

export function resolveBuildOptions(opts: BuildOptions, env: NodeJS.ProcessEnv = process.env): ResolvedBuildOptions {
  let epoch = 0
  // Reproducible by default (as ko, Jib, rules_oci and apko): RUN layers' new file times are clamped to
  // the epoch, so the same inputs give the same digest with or without SOURCE_DATE_EPOCH.
  const reproducible = opts.reproducible !== false
  let created: string | undefined
  const sde = opts.sourceDateEpoch ?? (env.SOURCE_DATE_EPOCH !== undefined && env.SOURCE_DATE_EPOCH !== '' ? env.SOURCE_DATE_EPOCH : undefined)
  if (sde === 'now') {
    created = new Date().toISOString()
  } else if (sde !== undefined) {
    const n = typeof sde === 'number' ? sde : Number(sde)
    if (!Number.isInteger(n) || n < 0) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `SOURCE_DATE_EPOCH must be a non-negative integer, got ${JSON.stringify(sde)}`, { sourceDateEpoch: sde })
    }
    epoch = n
  } else if (!reproducible) {
    created = new Date().toISOString()
  }
  return {
    contextDir: resolve(opts.context ?? '.'),
    cacheDir: opts.cacheDir ? resolve(opts.cacheDir) : defaultCacheDir(env),
    epoch,
    clampRunMtimes: reproducible,
    created: created ?? new Date(epoch * 1000).toISOString().replace('.000Z', 'Z'),
    ...targetPlatforms(opts),
    ...entitlements(opts),
    ssh: sshSockets(opts.ssh),
    dockerHost: env.DOCKER_HOST ? env.DOCKER_HOST : DEFAULT_DOCKER_HOST,
    ...(env.DOCKER_TLS_VERIFY || env.DOCKER_TLS
      ? { engineTls: { verify: Boolean(env.DOCKER_TLS_VERIFY), certPath: env.DOCKER_CERT_PATH ? resolve(env.DOCKER_CERT_PATH) : join(homedir(), '.docker') } }
      : {}),
    registry: resolveRegistryOptions(opts.registry, env),
    ...attestOf(opts),
  }
}

/** `attest` checked before any work, so a typo fails the build at once rather than after the solve. */
function attestOf(opts: BuildOptions): { attest?: ResolvedAttest } {
  const attest = resolveAttest(opts.attest)
  return attest ? { attest } : {}
}

/** Most target platforms of one build: each is a whole image solved beside the others. */
export const MAX_PLATFORMS = 32

/**
 * `platforms`, or `platform` (a comma list like `--platform`). One platform is taken as given, as
 * always; several are normalised as containerd does and kept each once, in the order given.
 */
function targetPlatforms(opts: BuildOptions): { platform: Platform; platforms: readonly Platform[] } {
  if (opts.platforms !== undefined && opts.platform !== undefined) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'give platform or platforms, not both', { option: 'platforms' })
  }
  const raw: unknown = opts.platforms ?? (opts.platform?.includes(',') ? opts.platform.split(',') : undefined)
  if (raw === undefined) {
    const one = parsePlatform(opts.platform)
    return { platform: one, platforms: [one] }
  }
  if (!Array.isArray(raw) || raw.length === 0 || raw.some((p) => typeof p !== 'string' || p.trim() === '')) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `platforms must be a non-empty list of os/arch[/variant], got ${JSON.stringify(raw)}`, { option: 'platforms' })
  }
  if (raw.length > MAX_PLATFORMS) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `at most ${MAX_PLATFORMS} platforms, got ${raw.length}`, { option: 'platforms', limit: MAX_PLATFORMS })
  }
  const byName = new Map<string, Platform>()
  for (const text of raw as string[]) {
    const p = normalizePlatform(parsePlatform(text.trim()))
    byName.set(formatPlatform(p), p)
  }
  const platforms = [...byName.values()]
  // One platform left (`linux/arm64,linux/arm64/v8`) builds the plain image it names.
  if (platforms.length === 1) return { platform: parsePlatform((raw as string[])[0]!.trim()), platforms: [parsePlatform((raw as string[])[0]!.trim())] }
  return { platform: platforms[0]!, platforms }
}

/** The environment variable holding pull mirrors: `docker.io=127.0.0.1:5000,docker.io=m2:5000`. */
export const MIRRORS_ENV = 'IMAGESMITH_REGISTRY_MIRRORS'

/**
 * Registry options with defaults: mirrors from the option, else from $IMAGESMITH_REGISTRY_MIRRORS
 * (per registry: a registry the option names takes the option's list); config.json from
 * `configDir`, else $DOCKER_CONFIG, else ~/.docker.
 */
export function resolveRegistryOptions(opts: RegistryOptions = {}, env: NodeJS.ProcessEnv = process.env): RegistryConfig {
  const fromEnv = env[MIRRORS_ENV] ? parseMirrorList(env[MIRRORS_ENV], MIRRORS_ENV) : {}
  const mirrors: Record<string, readonly string[]> = { ...fromEnv }
  for (const [registry, list] of Object.entries(opts.mirrors ?? {})) {
    if (!Array.isArray(list) || list.some((m) => typeof m !== 'string')) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `registry.mirrors[${JSON.stringify(registry)}] must be a list of host[:port] strings`, { option: 'registry.mirrors', registry })
    }
    mirrors[registry] = [...list]
  }
  const positive = (v: number | undefined, name: string, dflt: number, min: number): number => {
    if (v === undefined) return dflt
    if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `registry.${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`, { option: `registry.${name}` })
    return v
  }
  const insecure = [...(opts.insecure ?? [])]
  // A malformed mirror fails here, before any work, not at the first FROM.
  for (const registry of Object.keys(mirrors)) pullEndpoints(registry, { mirrors, insecure })
  return {
    mirrors,
    insecure,
    ...(opts.caFile ? { caFile: resolve(opts.caFile) } : {}),
    configDir: opts.configDir ? resolve(opts.configDir) : env.DOCKER_CONFIG ? resolve(env.DOCKER_CONFIG) : join(homedir(), '.docker'),
    auths: { ...(opts.auths ?? {}) },
    retries: positive(opts.retries, 'retries', 4, 0),
    concurrency: positive(opts.concurrency, 'concurrency', 4, 1),
    backoffMs: 200,
  }
}

export type Entitlement = 'network.host' | 'security.insecure'
export const ENTITLEMENTS: readonly Entitlement[] = Object.freeze(['network.host', 'security.insecure'])

/** `allow` checked, and the build's network: 'host' only with the `network.host` entitlement (BuildKit's). */
function entitlements(opts: BuildOptions): { network: 'default' | 'none' | 'host'; allow: readonly Entitlement[] } {
  const allow = opts.allow ?? []
  if (!Array.isArray(allow)) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'allow must be a list of entitlements', { option: 'allow' })
  for (const a of allow) {
    if (!ENTITLEMENTS.includes(a)) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `unknown entitlement ${JSON.stringify(a)} (${ENTITLEMENTS.join(' or ')})`, { option: 'allow', entitlement: a })
    }
  }
  const n: unknown = opts.network
  if (n !== undefined && n !== 'default' && n !== 'none' && n !== 'host') {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid network ${JSON.stringify(n)}: default, none or host`, { option: 'network', network: n })
  }
  if (n === 'host' && !allow.includes('network.host')) {
    throw new InvalidArgumentError(ErrorCodes.ENTITLEMENT_REQUIRED, "network 'host' needs the network.host entitlement (allow: ['network.host'], --allow network.host)", {
      option: 'network', network: n, entitlement: 'network.host',
    })
  }
  return { network: n ?? 'default', allow: [...new Set(allow)] }
}

function sshSockets(ssh: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const [id, path] of Object.entries(ssh ?? {})) {
    if (id === '' || typeof path !== 'string' || path === '') {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `ssh[${JSON.stringify(id)}] must name an SSH agent socket path`, { option: 'ssh', id })
    }
    out[id] = resolve(path)
  }
  return out
}
