import { isIP } from 'node:net'
import { ErrorCodes, InvalidArgumentError } from '../errors.js'

/** Build-wide settings of every RUN container (buildx `--add-host`, `--ulimit`, `--shm-size`); part of RUN cache keys when set. */
export interface RunSettings {
  /** Lines added to each RUN's /etc/hosts. */
  readonly extraHosts: readonly { readonly host: string; readonly ip: string }[]
  readonly ulimits: readonly { readonly name: string; readonly soft: number; readonly hard: number }[]
  /** Bytes of the /dev/shm tmpfs. @default 64 MiB */
  readonly shmSize?: number
}

/** Docker's ulimit names (docker/go-units). */
const ULIMITS = new Set(['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'])
const bad = (option: string, value: unknown, why: string) =>
  new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid ${option} ${JSON.stringify(value)}: ${why}`, { option, value })

/** `host:ip` or `host=ip` (buildx `--add-host`); an IPv6 address after the first separator. */
export function parseExtraHost(text: string): { host: string; ip: string } {
  if (typeof text !== 'string') throw bad('addHosts', text, 'HOST:IP expected')
  const eq = text.indexOf('=')
  const sep = eq >= 0 ? eq : text.indexOf(':')
  const host = text.slice(0, sep).trim()
  const ip = text.slice(sep + 1).trim().replace(/^\[(.*)\]$/, '$1')
  if (sep <= 0 || !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) throw bad('addHosts', text, 'HOST:IP expected')
  if (!isIP(ip)) throw bad('addHosts', text, ip === 'host-gateway' ? 'host-gateway is not supported: give the address' : `${JSON.stringify(ip)} is not an IP address`)
  return { host, ip }
}

/** `nofile=1024[:2048]` as docker's `--ulimit` takes it (soft[:hard]; the hard limit defaults to the soft one). */
export function parseUlimit(text: string): { name: string; soft: number; hard: number } {
  if (typeof text !== 'string') throw bad('ulimits', text, 'NAME=SOFT[:HARD] expected')
  const eq = text.indexOf('=')
  const name = text.slice(0, eq)
  if (eq <= 0 || !ULIMITS.has(name)) throw bad('ulimits', text, `NAME=SOFT[:HARD] with NAME one of ${[...ULIMITS].join(', ')}`)
  const [softText, hardText, extra] = text.slice(eq + 1).split(':')
  const num = (s: string | undefined) => (s !== undefined && /^\d{1,15}$/.test(s) ? Number(s) : NaN)
  const soft = num(softText)
  const hard = hardText === undefined ? soft : num(hardText)
  if (extra !== undefined || !Number.isSafeInteger(soft) || !Number.isSafeInteger(hard)) throw bad('ulimits', text, 'limits are non-negative integers (SOFT[:HARD])')
  if (soft > hard) throw bad('ulimits', text, 'the soft limit is above the hard one')
  return { name, soft, hard }
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** Bytes as docker's `--shm-size` reads them (go-units RAMInBytes: `64m`, `1g`, `1048576`; binary units). */
export function parseShmSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value <= 0) throw bad('shmSize', value, 'a positive number of bytes')
    return value
  }
  const m = typeof value === 'string' ? /^(\d{1,15}(?:\.\d{1,6})?)\s?([kmgtb]?)(?:i?b)?$/i.exec(value.trim()) : null
  if (!m) throw bad('shmSize', value, 'a size such as 64m, 1g or a number of bytes')
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!)
  if (bytes <= 0) throw bad('shmSize', value, 'a positive size')
  return bytes
}

/** The build options as settings, or undefined when none is given (RUN cache keys stay as they were). */
export function runSettings(opts: { readonly addHosts?: readonly string[]; readonly ulimits?: readonly string[]; readonly shmSize?: string | number }): RunSettings | undefined {
  const list = (v: unknown, option: string): readonly string[] => {
    if (v === undefined) return []
    if (!Array.isArray(v)) throw bad(option, v, 'a list of strings expected')
    return v
  }
  const extraHosts = list(opts.addHosts, 'addHosts').map(parseExtraHost)
  const ulimits = list(opts.ulimits, 'ulimits').map(parseUlimit)
  const names = ulimits.map((u) => u.name)
  const dup = names.find((n, i) => names.indexOf(n) !== i)
  if (dup) throw bad('ulimits', dup, 'given more than once')
  const shmSize = opts.shmSize === undefined ? undefined : parseShmSize(opts.shmSize)
  if (extraHosts.length === 0 && ulimits.length === 0 && shmSize === undefined) return undefined
  return { extraHosts, ulimits, ...(shmSize !== undefined ? { shmSize } : {}) }
}
