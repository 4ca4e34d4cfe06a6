import { ErrorCodes, ImagesmithError } from '../errors.js'
import { RegistryClient } from './client.js'
import { credentialKey, DOCKER_HUB_KEY, eraseCredentials, storeCredentials, type HelperRunner } from './config-write.js'
import type { RegistryConfig } from './options.js'
import { readBody } from './transport.js'

export interface LoginOptions {
  /** Registry settings (insecure hosts, CA file, config dir) as resolved for builds. */
  readonly config: RegistryConfig
  readonly runHelper?: HelperRunner
  readonly signal?: AbortSignal
}

/** The registry host a login names: `docker.io` for any of Docker Hub's names, else `host[:port]`. */
export function loginRegistry(arg: string | undefined): { key: string; registry: string } {
  const key = credentialKey(arg)
  return { key, registry: key === DOCKER_HUB_KEY ? 'docker.io' : key }
}

/**
 * `docker login`: the credentials are checked against the registry first (GET /v2/ with them,
 * through a bearer token where the registry asks for one), then stored in config.json or its
 * credential helper. A refused password is UNAUTHORIZED, and nothing is written.
 */
export async function login(arg: string | undefined, username: string, password: string, opts: LoginOptions): Promise<{ key: string; helper?: string }> {
  const { key, registry } = loginRegistry(arg)
  await verifyCredentials(registry, username, password, opts)
  const stored = await storeCredentials(key, username, password, { configDir: opts.config.configDir, ...(opts.runHelper ? { runHelper: opts.runHelper } : {}) })
  return { key, ...stored }
}

export async function logout(arg: string | undefined, opts: Omit<LoginOptions, 'signal'>): Promise<{ key: string; removed: boolean }> {
  const { key } = loginRegistry(arg)
  const removed = await eraseCredentials(key, { configDir: opts.config.configDir, ...(opts.runHelper ? { runHelper: opts.runHelper } : {}) })
  return { key, removed }
}

export async function verifyCredentials(registry: string, username: string, password: string, opts: LoginOptions): Promise<void> {
  // Only these credentials: config.json's entry for the registry (maybe the old password) must not answer instead.
  const client = new RegistryClient({ ...opts.config, auths: { [registry]: { username, password } } })
  try {
    const ep = client.originEndpoint(registry)
    // A ping with no scope: a registry with token auth hands out a token for the credentials alone.
    // The first answer names the scheme; the client answers it once with the credentials, and a
    // second refusal (or the token server's) is UNAUTHORIZED.
    const res = await client.request(ep, [], { method: 'GET', path: '/v2/', signal: opts.signal }, { repository: '', what: 'ping' })
    await readBody(res, 64 << 10)
    if (res.status !== 200) {
      throw new ImagesmithError(ErrorCodes.REGISTRY_ERROR, `login to ${registry}: GET /v2/ answered ${res.status}`, { registry, status: res.status })
    }
  } catch (e) {
    if (e instanceof ImagesmithError && e.code === ErrorCodes.UNAUTHORIZED && !e.message.startsWith('login')) {
      throw new ImagesmithError(ErrorCodes.UNAUTHORIZED, `login to ${registry} failed: the registry refused the credentials for user ${JSON.stringify(username)}`, { ...e.details, registry }, { cause: e })
    }
    throw e
  } finally {
    client.close()
  }
}
