import type { BakeEntry, BakeSecret, BakeSsh } from './types.js'

/** Why an entry could not be read; the caller adds where it was (file and target, or the `--set`). */
export class EntryError extends Error {}

/**
 * Splits one CSV record as Go's encoding/csv does for buildx's flags: commas separate fields, a field that
 * starts with `"` runs to its closing quote and `""` inside is one quote. One pass, no regex.
 */
export function csvFields(s: string): string[] {
  const out: string[] = []
  let i = 0
  for (;;) {
    let field = ''
    if (s[i] === '"') {
      i++
      for (;;) {
        if (i >= s.length) throw new EntryError(`unterminated quote in ${JSON.stringify(s)}`)
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"'
            i += 2
            continue
          }
          i++
          break
        }
        field += s[i++]
      }
      if (i < s.length && s[i] !== ',') throw new EntryError(`unexpected text after a quoted field in ${JSON.stringify(s)}`)
    } else {
      const end = s.indexOf(',', i)
      field = s.slice(i, end < 0 ? s.length : end)
      i = end < 0 ? s.length : end
    }
    out.push(field)
    if (i >= s.length) return out
    i++ // the comma
  }
}

function keyValues(s: string): Array<[string, string]> {
  return csvFields(s).map((f) => {
    const eq = f.indexOf('=')
    if (eq < 0) throw new EntryError(`invalid value ${JSON.stringify(f)} in ${JSON.stringify(s)}: expected key=value`)
    return [f.slice(0, eq).trim().toLowerCase(), f.slice(eq + 1)]
  })
}

function fromObject(v: unknown, what: string): Record<string, string> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new EntryError(`${what} must be a string or an object`)
  const out: Record<string, string> = {}
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') throw new EntryError(`${what}.${k} must be a string`)
    out[k] = String(x)
  }
  return out
}

/** An `output` entry: `type=…,dest=…,…`, a bare path (`local`), `-` (`tar` to stdout), or an object. */
export function parseOutput(v: unknown): BakeEntry {
  if (typeof v !== 'string') return withType(fromObject(v, 'output'), 'output')
  const fields = csvFields(v)
  if (fields.length === 1 && fields[0] === v && !v.startsWith('type=')) return v === '-' ? { type: 'tar', dest: '-' } : { type: 'local', dest: v }
  return withType(Object.fromEntries(keyValues(v)), 'output')
}

/** A `cache-from` / `cache-to` entry: `type=…,…`, a bare registry reference (`type=registry,ref=…`), or an object. */
export function parseCache(v: unknown): BakeEntry {
  if (typeof v !== 'string') return withType(fromObject(v, 'cache'), 'cache')
  const fields = csvFields(v)
  if (fields.length === 1 && !fields[0]!.includes('=')) return { type: 'registry', ref: fields[0]! }
  return withType(Object.fromEntries(keyValues(v)), 'cache')
}

/** An `attest` entry: `type=sbom|provenance,…` or an object. */
export function parseAttest(v: unknown): BakeEntry {
  return withType(typeof v === 'string' ? Object.fromEntries(keyValues(v)) : fromObject(v, 'attest'), 'attest')
}

function withType(m: Record<string, string>, what: string): BakeEntry {
  if (!m.type) throw new EntryError(`${what} entry needs a type`)
  const { type, ...rest } = m
  return { type, ...rest }
}

/** A `secret` entry: `id=…,src=…` / `id=…,env=…` (`type=file|env`, `source` for `src`) or an object. */
export function parseSecret(v: unknown): BakeSecret {
  const m = typeof v === 'string' ? keyValues(v) : Object.entries(fromObject(v, 'secret'))
  let id: string | undefined, src: string | undefined, env: string | undefined, type: string | undefined
  for (const [k, x] of m) {
    if (k === 'id') id = x
    else if (k === 'src' || k === 'source') src = x
    else if (k === 'env') env = x
    else if (k === 'type') {
      if (x !== 'file' && x !== 'env') throw new EntryError(`unsupported secret type ${JSON.stringify(x)}`)
      type = x
    } else throw new EntryError(`unexpected key ${JSON.stringify(k)} in secret`)
  }
  if (type === 'env' && env === undefined) {
    env = src
    src = undefined
  }
  return { ...(id !== undefined ? { id } : {}), ...(src !== undefined ? { src } : {}), ...(env !== undefined ? { env } : {}) }
}

/** An `ssh` entry: `default`, `ID=PATH[,PATH]`, or an object `{ id, paths }`. */
export function parseSsh(v: unknown): BakeSsh {
  if (typeof v !== 'string') {
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new EntryError('ssh must be a string or an object')
    const o = v as { id?: unknown; paths?: unknown }
    if (o.id !== undefined && typeof o.id !== 'string') throw new EntryError('ssh.id must be a string')
    if (o.paths !== undefined && !(Array.isArray(o.paths) && o.paths.every((p) => typeof p === 'string'))) throw new EntryError('ssh.paths must be a list of strings')
    return { id: (o.id as string | undefined) || 'default', paths: (o.paths as string[] | undefined) ?? [] }
  }
  const fields = csvFields(v)
  const first = fields[0]!
  const eq = first.indexOf('=')
  const id = eq < 0 ? first : first.slice(0, eq)
  const paths = eq < 0 ? [] : [first.slice(eq + 1), ...fields.slice(1)]
  if (!id) throw new EntryError(`invalid ssh ${JSON.stringify(v)}`)
  return { id, paths }
}
