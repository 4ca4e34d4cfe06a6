import { spawn } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { RegistryCredentials } from './options.js'

/** The key Docker files Docker Hub's credentials under in config.json and asks helpers for. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/'

/** What config.json holds (the parts imagesmith reads and writes). */
export interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }>
  credsStore?: string
  credHelpers?: Record<string, string>
  [key: string]: unknown
}

/** The server URL Docker uses for a registry in config.json and with credential helpers. */
export function authKey(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' || registry === 'registry-1.docker.io' ? DOCKER_HUB_AUTH_KEY : registry
}

/** `https://host/v1/` → `host`: how Docker compares config.json keys (ConvertToHostname). */
export function keyHost(key: string): string {
  return key.replace(/^https?:\/\//, '').split('/')[0]!
}

export async function readDockerConfig(configDir: string): Promise<DockerConfigFile> {
  const path = join(configDir, 'config.json')
  let text: string
  try {
    text = await fsp.readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new ImagesmithError(ErrorCodes.CREDENTIALS_FAILED, `cannot read ${path}: ${(e as Error).message}`, { path }, { cause: e })
  }
  try {
    return JSON.parse(text) as DockerConfigFile
  } catch (e) {
    // The file holds secrets: say where it is broken, never echo it.
    throw new ImagesmithError(ErrorCodes.CREDENTIALS_FAILED, `${path} is not valid JSON`, { path })
  }
}

/**
 * Credentials for registries: explicit ones first, then `config.json` in `configDir` as Docker
 * reads it — `credHelpers[host]`, then `credsStore`, then `auths` (base64 `auth` or
 * username/password, `identitytoken`). Helpers are `docker-credential-<name> get` with the server
 * URL on stdin. Looked up once per registry and kept in memory only.
 */
export class CredentialStore {
  readonly #configDir: string
  readonly #explicit: Readonly<Record<string, RegistryCredentials>>
  readonly #cache = new Map<string, Promise<RegistryCredentials | undefined>>()
  #config?: Promise<DockerConfigFile>

  constructor(configDir: string, explicit: Readonly<Record<string, RegistryCredentials>> = {}) {
    this.#configDir = configDir
    this.#explicit = explicit
  }

  /** Credentials for `registry` (`docker.io`, `127.0.0.1:5000`), or undefined for anonymous access. */
  get(registry: string): Promise<RegistryCredentials | undefined> {
    let p = this.#cache.get(registry)
    if (!p) {
      p = this.#lookup(registry)
      this.#cache.set(registry, p)
      p.catch(() => this.#cache.delete(registry))
    }
    return p
  }

  async #lookup(registry: string): Promise<RegistryCredentials | undefined> {
    const explicit = this.#explicit[registry] ?? (registry === 'docker.io' ? this.#explicit['index.docker.io'] : undefined)
    if (explicit) return explicit
    this.#config ??= readDockerConfig(this.#configDir)
    const cfg = await this.#config
    const key = authKey(registry)
    const host = keyHost(key)
    const helper = cfg.credHelpers?.[key] ?? cfg.credHelpers?.[registry] ?? Object.entries(cfg.credHelpers ?? {}).find(([k]) => keyHost(k) === host)?.[1]
    if (helper) return runHelper(helper, key)
    if (cfg.credsStore) {
      const found = await runHelper(cfg.credsStore, key)
      if (found) return found
    }
    const entry = cfg.auths?.[key] ?? Object.entries(cfg.auths ?? {}).find(([k]) => keyHost(k) === host)?.[1]
    if (!entry) return undefined
    if (entry.identitytoken) return { username: entry.username ?? decodeAuth(entry.auth)?.username, identityToken: entry.identitytoken }
    if (entry.auth) {
      const decoded = decodeAuth(entry.auth)
      if (!decoded) throw new ImagesmithError(ErrorCodes.CREDENTIALS_FAILED, `the auth entry for ${key} in ${join(this.#configDir, 'config.json')} is not base64 user:password`, { registry, path: join(this.#configDir, 'config.json') })
      return decoded
    }
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password }
    return undefined
  }
}

function decodeAuth(auth: string | undefined): { username: string; password: string } | undefined {
  if (!auth) return undefined
  const text = Buffer.from(auth, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  return colon > 0 ? { username: text.slice(0, colon), password: text.slice(colon + 1) } : undefined
}

/** docker-credential-helpers' protocol: `get`, server URL on stdin, `{ServerURL,Username,Secret}` out. */
export async function runHelper(name: string, serverUrl: string): Promise<RegistryCredentials | undefined> {
  const program = `docker-credential-${name}`
  const { code, stdout, stderr, spawnError } = await execHelper(program, ['get'], serverUrl)
  if (spawnError) {
    throw new ImagesmithError(ErrorCodes.CREDENTIALS_FAILED, `credential helper ${program} cannot start: ${spawnError.message}`, { helper: program, registry: serverUrl }, { cause: spawnError })
  }
  if (code !== 0) {
    // The helpers' own words for "nothing stored": anonymous access, as docker does.
    if (/credentials not found/i.test(stdout + stderr)) return undefined
    throw new ImagesmithError(ErrorCodes.CREDENTIALS_FAILED, `credential helper ${program} failed for ${serverUrl} (exit code ${code})`, { helper: program, registry: serverUrl, exitCode: code })
  }
  let parsed: { Username?: string; Secret?: string }
  try {
    parsed = JSON.parse(stdout) as { Username?: string; Secret?: string }
  } catch {
    throw new ImagesmithError(ErrorCodes.CREDENTIALS_FAILED, `credential helper ${program} printed no JSON for ${serverUrl}`, { helper: program, registry: serverUrl })
  }
  if (!parsed.Secret) return undefined
  // `<token>` as the user name marks an identity token (docker's convention).
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret }
  return { username: parsed.Username ?? '', password: parsed.Secret }
}

/** Runs a helper with `input` on stdin; exported for `login`/`logout` (`store`, `erase`). */
export function execHelper(program: string, args: readonly string[], input: string): Promise<{ code: number; stdout: string; stderr: string; spawnError?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', (e) => resolve({ code: -1, stdout, stderr, spawnError: e }))
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    child.stdin.on('error', () => undefined)
    child.stdin.end(input)
  })
}
