import { ErrorCodes, InvalidArgumentError } from '../errors.js'

const SIGNALS = [
  'HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'IOT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM', 'TERM',
  'STKFLT', 'CHLD', 'CLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF', 'WINCH', 'IO',
  'POLL', 'PWR', 'SYS', 'UNUSED',
]

/** Accepts what Docker's signal.ParseSignal accepts: `SIGTERM`, `TERM`, `9`, `SIGRTMIN+3`. Returns it as written. */
export function validateSignal(signal: string): string {
  const s = String(signal).trim()
  if (/^\d+$/.test(s)) {
    const n = Number(s)
    if (n >= 1 && n <= 64) return s
  } else {
    const name = s.toUpperCase().replace(/^SIG/, '')
    if (SIGNALS.includes(name)) return s
    const rt = /^RTM(IN|AX)([+-](\d+))?$/.exec(name)
    if (rt && (!rt[3] || Number(rt[3]) <= 30)) return s
  }
  throw new InvalidArgumentError(ErrorCodes.INVALID_SIGNAL, `invalid stop signal: ${JSON.stringify(signal)}`, { signal })
}

/**
 * Normalises an EXPOSE port the way Docker does: `80` → `80/tcp`, `53/UDP` → `53/udp`,
 * ranges `8000-8002/tcp` expand to each port. Rejects anything else with INVALID_PORT.
 */
export function normalizePorts(port: string | number): string[] {
  const raw = String(port).trim()
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(raw)
  const bad = () => new InvalidArgumentError(ErrorCodes.INVALID_PORT, `invalid port: ${JSON.stringify(port)}`, { port })
  if (!m) throw bad()
  const start = Number(m[1])
  const end = m[2] === undefined ? start : Number(m[2])
  const proto = (m[3] ?? 'tcp').toLowerCase()
  if (start < 1 || end > 65535 || end < start) throw bad()
  const out: string[] = []
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`)
  return out
}

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

/** chmod as BuildKit accepts it: octal digits only (e.g. `755`, `0644`). Returns the mode bits. */
export function parseChmod(chmod: string | number): number {
  const s = typeof chmod === 'number' ? chmod.toString(8) : chmod.trim()
  if (!/^[0-7]{1,4}$/.test(s)) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid chmod: ${JSON.stringify(chmod)} (octal digits expected)`, { chmod })
  }
  return parseInt(s, 8)
}
