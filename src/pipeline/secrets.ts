import { promises as fsp } from 'node:fs'
import { resolve } from 'node:path'
import { ErrorCodes, ImagesmithError, InvalidArgumentError } from '../errors.js'
import type { SecretSource } from '../solver/types.js'

/**
 * Secrets checked before any work, as buildx's secret store does: each is `{ src }`, `{ env }` or
 * `{ value }`, and a `src` file must be there (a step would otherwise only learn that the secret
 * "was not provided"). Relative paths are resolved against the working directory, once, here.
 */
export async function checkSecrets(secrets: Readonly<Record<string, SecretSource>> | undefined): Promise<Record<string, SecretSource>> {
  const out: Record<string, SecretSource> = {}
  if (secrets === undefined) return out
  if (secrets === null || typeof secrets !== 'object' || Array.isArray(secrets)) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'secrets must be a record of id → { src } | { env } | { value }', { option: 'secrets' })
  }
  for (const [id, source] of Object.entries(secrets)) {
    const s = source as Partial<Record<'src' | 'env' | 'value', unknown>> | null
    const keys = s && typeof s === 'object' ? (['src', 'env', 'value'] as const).filter((k) => s[k] !== undefined) : []
    if (keys.length !== 1 || typeof s![keys[0]!] !== 'string') {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `secrets[${JSON.stringify(id)}] must be { src: PATH }, { env: NAME } or { value: STRING }, got ${describe(source)}`, { option: 'secrets', id })
    }
    if (keys[0] !== 'src') {
      out[id] = source
      continue
    }
    const path = resolve(s!.src as string)
    let st
    try {
      st = await fsp.stat(path)
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`
      throw new ImagesmithError(ErrorCodes.SECRET_NOT_FOUND, `secret ${JSON.stringify(id)}: file ${path} ${why}`, { id, path }, { cause: e })
    }
    if (!st.isFile()) throw new ImagesmithError(ErrorCodes.SECRET_NOT_FOUND, `secret ${JSON.stringify(id)}: ${path} is not a file`, { id, path })
    out[id] = { src: path }
  }
  return out
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v)} (write { src: ${JSON.stringify(v)} } for a file)`
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}
