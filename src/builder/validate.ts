import { ErrorCodes, InvalidArgumentError } from '../errors.js'

// Rules an executor applies again after `$VAR` expansion live with the graph.
export { normalizePorts, parseChmod, validateSignal } from '../graph/values.js'

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }

/** A duration as Go's time.ParseDuration reads it (`30s`, `1m30s`, `500ms`) or a number of seconds; returns nanoseconds. */
export function parseDuration(value: string | number, field: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw badDuration(value, field)
    return Math.round(value * 1e9)
  }
  const s = value.trim()
  if (s === '0') return 0
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy
  let total = 0
  let m: RegExpExecArray | null
  let consumed = 0
  while ((m = re.exec(s))) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!
    consumed = re.lastIndex
  }
  if (consumed === 0 || consumed !== s.length) throw badDuration(value, field)
  return Math.round(total)
}

function badDuration(value: unknown, field: string): InvalidArgumentError {
  return new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid duration for ${field}: ${JSON.stringify(value)}`, { field, value })
}

export function requireNonEmpty(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${what} must be a non-empty string`, { value })
  }
  return value
}

const ENV_NAME = /^[^=\s]+$/

export function validateEnvName(name: string, what = 'ENV'): string {
  if (typeof name !== 'string' || !ENV_NAME.test(name)) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${what} name must be non-empty and contain no '=' or whitespace: ${JSON.stringify(name)}`, { name })
  }
  return name
}
