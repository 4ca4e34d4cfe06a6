/**
 * Whether this host can run a RUN step's programs for a platform: natively, or through a
 * binfmt_misc handler (qemu-user-static) the kernel runs foreign ELF binaries with. Only a handler
 * with the F flag counts: the kernel opened its interpreter when it was registered, so it works in a
 * container whose rootfs has no qemu (testbed.md, "Other platforms").
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Graph } from '../graph/node.js'
import { formatPlatform, ociArch } from '../oci/platform.js'
import type { Platform } from '../oci/types.js'
import { normalizePlatform } from '../oci/platform.js'

export const BINFMT_DIR = '/proc/sys/fs/binfmt_misc'
/** Where qemu-user-static ships its handler definitions (`qemu-<arch>.conf`, systemd-binfmt's format). */
export const BINFMT_CONF_DIR = '/usr/lib/binfmt.d'

/** qemu's name of each OCI architecture (the `qemu-<name>` handler and .conf file). */
export const QEMU_ARCH: Readonly<Record<string, string>> = Object.freeze({
  '386': 'i386',
  amd64: 'x86_64',
  arm: 'arm',
  arm64: 'aarch64',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64le: 'mips64el',
  loong64: 'loongarch64',
})

/** ELF `e_machine` of each OCI architecture (elf.h). */
const ELF_MACHINE: Readonly<Record<string, number>> = Object.freeze({
  '386': 0x03,
  amd64: 0x3e,
  arm: 0x28,
  arm64: 0xb7,
  ppc64le: 0x15,
  s390x: 0x16,
  riscv64: 0xf3,
  mips64le: 0x08,
  loong64: 0x102,
})

/** Architectures a host runs without emulation besides its own (the kernel's compat modes). */
const NATIVE_COMPAT: Readonly<Record<string, readonly string[]>> = Object.freeze({ amd64: ['386'] })

/** Entries of a binfmt_misc dir read at most (a host has a few dozen). */
const MAX_HANDLERS = 256

export interface Emulator {
  readonly name: string
  readonly interpreter: string
}

/**
 * How the host runs programs for `platform`: `native`, an emulator, or undefined when it cannot.
 * `binfmtDir` is read on every call (a handler may be registered while a process runs).
 */
export function runSupport(platform: Platform, host: string = ociArch(), binfmtDir: string = BINFMT_DIR): 'native' | Emulator | undefined {
  const p = normalizePlatform(platform)
  if (p.os !== 'linux') return undefined
  if (p.architecture === host || (NATIVE_COMPAT[host] ?? []).includes(p.architecture)) return 'native'
  const machine = ELF_MACHINE[p.architecture]
  if (machine === undefined) return undefined
  return binfmtHandlers(binfmtDir).find((h) => h.machine === machine && h.fixBinary)
}

export interface Handler extends Emulator {
  readonly machine: number
  readonly fixBinary: boolean
}

/** The enabled ELF handlers registered with binfmt_misc; none when it is not mounted. */
export function binfmtHandlers(dir: string = BINFMT_DIR): Handler[] {
  let names: string[]
  try {
    names = readdirSync(dir).filter((n) => n !== 'register' && n !== 'status').slice(0, MAX_HANDLERS)
  } catch {
    return []
  }
  const out: Handler[] = []
  for (const name of names) {
    let text: string
    try {
      text = readFileSync(join(dir, name), 'utf8').slice(0, 4096)
    } catch {
      continue
    }
    const h = parseHandler(name, text)
    if (h) out.push(h)
  }
  return out
}

/**
 * One `/proc/sys/fs/binfmt_misc/<name>` file: `enabled`, `interpreter …`, `flags: OCF`, `offset 0`,
 * `magic 7f454c46…`. The ELF header's e_machine sits at byte 18, in the byte order of byte 5.
 */
export function parseHandler(name: string, text: string): Handler | undefined {
  const lines = text.split('\n')
  if (lines[0]?.trim() !== 'enabled') return undefined
  const field = (key: string) => lines.find((l) => l.startsWith(`${key} `) || l.startsWith(`${key}:`))?.slice(key.length + 1).trim()
  const interpreter = field('interpreter')
  const magic = field('magic')
  if (!interpreter || !magic || (field('offset') ?? '0') !== '0' || !/^[0-9a-f]{40,}$/i.test(magic) || !magic.toLowerCase().startsWith('7f454c46')) return undefined
  const byte = (i: number) => parseInt(magic.slice(i * 2, i * 2 + 2), 16)
  const machine = byte(5) === 2 ? (byte(18) << 8) | byte(19) : byte(18) | (byte(19) << 8)
  return { name, interpreter, machine, fixBinary: (field('flags') ?? '').includes('F') }
}

/** UNSUPPORTED_PLATFORM unless the host can run `platform`'s programs; names the step and the platform. */
export function requireRunnable(platform: Platform, step: string, binfmtDir?: string): void {
  const host = ociArch()
  if (runSupport(platform, host, binfmtDir) !== undefined) return
  const wanted = formatPlatform(platform)
  const how = platform.os !== 'linux'
    ? 'RUN runs Linux programs only'
    : `this host is linux/${host} and has no emulator for it (register qemu-user-static's binfmt_misc handler with the F flag)`
  throw new ImagesmithError(ErrorCodes.UNSUPPORTED_PLATFORM, `${step}: cannot run programs for ${wanted}: ${how}`, {
    platform: wanted,
    host: `linux/${host}`,
    step,
  })
}

/** A platform RUN steps are wanted for, with the first such step (named in the error). */
export interface RunPlatform {
  readonly platform: Platform
  readonly step: string
}

export interface EmulationOptions {
  /** The host's OCI architecture; default this process's. */
  readonly host?: string
  readonly binfmtDir?: string
  readonly confDir?: string
}

/** The platforms of a graph's RUN vertices (a vertex without one runs for the build's), first step of each. */
export function runPlatforms(graph: Graph, buildPlatform: Platform): RunPlatform[] {
  const seen = new Map<string, RunPlatform>()
  for (const v of graph.vertices) {
    if (v.kind !== 'run') continue
    const platform = v.platform ?? buildPlatform
    const key = formatPlatform(normalizePlatform(platform))
    if (!seen.has(key)) seen.set(key, { platform, step: v.meta.description })
  }
  return [...seen.values()]
}

/**
 * Before any step runs: UNSUPPORTED_PLATFORM unless this host runs every wanted platform's programs,
 * natively or through an enabled binfmt_misc handler with the F flag. The handlers are read, not
 * probed with a program of each architecture (as BuildKit's binfmt check does): that would ship a
 * binary per architecture, and the F flag already says the kernel holds the interpreter open.
 * The message names the platform, the host and the commands that fix it.
 */
export function requireEmulation(wanted: readonly RunPlatform[], opts: EmulationOptions = {}): void {
  const host = opts.host ?? ociArch()
  const binfmtDir = opts.binfmtDir ?? BINFMT_DIR
  for (const { platform, step } of wanted) {
    if (runSupport(platform, host, binfmtDir) !== undefined) continue
    const wantedText = formatPlatform(platform)
    const arch = normalizePlatform(platform).architecture
    const fix = platform.os === 'linux' ? emulatorFix(arch, binfmtDir, opts.confDir ?? BINFMT_CONF_DIR) : []
    const how = platform.os !== 'linux'
      ? 'RUN runs Linux programs only'
      : fix.length === 0
        ? `this host is linux/${host} and no emulator exists for ${arch}`
        : `this host is linux/${host} and has no binfmt_misc handler with the F flag for it; fix: ${fix.join('; ')}`
    throw new ImagesmithError(ErrorCodes.UNSUPPORTED_PLATFORM, `${step}: cannot run programs for ${wantedText}: ${how}`, {
      platform: wantedText,
      host: `linux/${host}`,
      step,
      ...(fix.length > 0 ? { fix } : {}),
    })
  }
}

/** The commands that would make `arch` runnable here, from what is missing; none when qemu has no such target. */
function emulatorFix(arch: string, binfmtDir: string, confDir: string): string[] {
  const qemu = QEMU_ARCH[arch]
  if (qemu === undefined) return []
  const fix: string[] = []
  if (!existsSync(join(confDir, `qemu-${qemu}.conf`))) fix.push('apt-get install qemu-user-static')
  if (!existsSync(join(binfmtDir, 'register'))) fix.push(`mount -t binfmt_misc binfmt_misc ${binfmtDir}`)
  fix.push(`imagesmith binfmt --install ${arch}`)
  return fix
}
