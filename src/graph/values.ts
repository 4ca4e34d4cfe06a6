import { ErrorCodes, InvalidArgumentError } from '../errors.js'

/*
 * Value rules shared by the builder (checked eagerly on literal words) and the executors (checked
 * after a marked word was expanded at solve time; see expansion.ts).
 */

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

/** chmod as BuildKit accepts it: octal digits only (e.g. `755`, `0644`). Returns the mode bits. */
export function parseChmod(chmod: string | number): number {
  const s = typeof chmod === 'number' ? chmod.toString(8) : chmod.trim()
  if (!/^[0-7]{1,4}$/.test(s)) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid chmod: ${JSON.stringify(chmod)} (octal digits expected)`, { chmod })
  }
  return parseInt(s, 8)
}
