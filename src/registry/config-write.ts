import { spawn } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { writeFileAtomic } from '../store/atomic-write.js'

/** The key Docker files Docker Hub's credentials under, whatever name the user typed for it. */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/'
const HUB_NAMES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])

/**
 * The config.json key `docker login REGISTRY` uses: Docker Hub's legacy URL for any of its names
 * (or none), otherwise the bare `host[:port]` (scheme and path dropped, as the docker CLI does).
 */
export function credentialKey(registry: string | undefined): string {
  if (registry === undefined || registry === '') return DOCKER_HUB_KEY
  const host = registry.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '')
  return HUB_NAMES.has(host.toLowerCase()) ? DOCKER_HUB_KEY : host
}

export interface ConfigFileOptions {
  /** The docker config directory (config.json inside it). Resolved by the caller from DOCKER_CONFIG or ~/.docker. */
  readonly configDir: string
  /** Runs `docker-credential-<name>`; @default spawning it from PATH */
  readonly runHelper?: HelperRunner
}

export type HelperRunner = (program: string, action: 'store' | 'erase', input: string) => Promise<void>

interface ConfigJson {
  auths?: Record<string, { auth?: string; identitytoken?: string; [k: string]: unknown }>
  credsStore?: string
  credHelpers?: Record<string, string>
  [k: string]: unknown
}

/**
 * Stores credentials as `docker login` does: through the helper config.json names for this
 * registry (`credHelpers[key]`, else `credsStore`), leaving an empty `auths` entry so tools see the
 * login, or else as base64 `user:pass` in `auths[key].auth`. The file keeps every other key and is
 * replaced atomically with mode 0600.
 */
export async function storeCredentials(key: string, username: string, password: string, opts: ConfigFileOptions): Promise<{ helper?: string }> {
  const path = join(opts.configDir, 'config.json')
  const config = await readConfig(path)
  const helper = config.credHelpers?.[key] ?? config.credsStore
  const auths = { ...(config.auths ?? {}) }
  if (helper) {
    await (opts.runHelper ?? runCredentialHelper)(`docker-credential-${helper}`, 'store', JSON.stringify({ ServerURL: key, Username: username, Secret: password }))
    auths[key] = {}
  } else {
    const { identitytoken: _drop, ...rest } = auths[key] ?? {}
    auths[key] = { ...rest, auth: Buffer.from(`${username}:${password}`).toString('base64') }
  }
  await writeConfig(path, { ...config, auths })
  return helper ? { helper } : {}
}

/** `docker logout`: erases from the helper (if one holds this registry) and drops the `auths` entry. Returns whether anything was there. */
export async function eraseCredentials(key: string, opts: ConfigFileOptions): Promise<boolean> {
  const path = join(opts.configDir, 'config.json')
  const config = await readConfig(path)
  const helper = config.credHelpers?.[key] ?? config.credsStore
  const had = config.auths !== undefined && Object.hasOwn(config.auths, key)
  if (helper) await (opts.runHelper ?? runCredentialHelper)(`docker-credential-${helper}`, 'erase', key)
  if (!had) return helper !== undefined
  const auths = { ...config.auths }
  delete auths[key]
  await writeConfig(path, { ...config, auths })
  return true
}

async function readConfig(path: string): Promise<ConfigJson> {
  let text: string
  try {
    text = await fsp.readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw configError(path, `cannot read ${path}: ${(e as Error).message}`, e)
  }
  if (text.trim() === '') return {}
  try {
    const parsed = JSON.parse(text) as unknown
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object')
    return parsed as ConfigJson
  } catch (e) {
    throw configError(path, `${path} is not valid JSON: ${(e as Error).message}`, e)
  }
}

async function writeConfig(path: string, config: ConfigJson): Promise<void> {
  // A symlinked config.json (dotfile managers) is written where it points, as docker does.
  const target = await fsp.realpath(path).catch(() => path)
  try {
    await fsp.mkdir(join(target, '..'), { recursive: true, mode: 0o700 })
    await writeFileAtomic(target, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600, fsync: true })
    // The mode of a fresh file is subject to the umask; credentials must stay private whatever it is.
    await fsp.chmod(target, 0o600)
  } catch (e) {
    throw configError(path, `cannot write ${path}: ${(e as Error).message}`, e)
  }
}

function configError(path: string, message: string, cause: unknown): ImagesmithError {
  return new ImagesmithError(ErrorCodes.CREDENTIALS_STORE_FAILED, message, { path }, { cause })
}

/**
 * The credential-helper protocol: the action as the only argument, the payload on stdin. The
 * payload holds the secret, so neither it nor the helper's output goes into the error.
 */
export function runCredentialHelper(program: string, action: 'store' | 'erase', input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [action], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')))
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')))
    child.once('error', (e) => {
      const errno = (e as NodeJS.ErrnoException).code
      reject(
        new ImagesmithError(
          ErrorCodes.CREDENTIALS_STORE_FAILED,
          `credential helper ${program} cannot run (${errno ?? e.message}): is it on PATH?`,
          { helper: program, action },
          { cause: e },
        ),
      )
    })
    child.once('close', (code) => {
      if (code === 0) return resolve()
      // Helpers print short messages ("credentials not found in native keychain"); keep one line, never the input.
      const line = out.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 200) ?? ''
      const secret = action === 'store' ? secretOf(input) : undefined
      const safe = secret && line.includes(secret) ? line.split(secret).join('***') : line
      reject(new ImagesmithError(ErrorCodes.CREDENTIALS_STORE_FAILED, `credential helper ${program} ${action} failed (exit ${code})${safe ? `: ${safe}` : ''}`, { helper: program, action, exitCode: code }))
    })
    child.stdin.on('error', () => undefined)
    child.stdin.end(input)
  })
}

function secretOf(input: string): string | undefined {
  try {
    const s = (JSON.parse(input) as { Secret?: unknown }).Secret
    return typeof s === 'string' && s !== '' ? s : undefined
  } catch {
    return undefined
  }
}
