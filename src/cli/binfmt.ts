/**
 * `imagesmith binfmt`: the emulators this host runs foreign RUN steps with, and `--install` that
 * registers qemu-user-static's handlers with binfmt_misc, as `docker run --privileged tonistiigi/binfmt`
 * does, but from the distribution's own `/usr/lib/binfmt.d/qemu-<arch>.conf` files (flags `OPF`).
 */
import { execFileSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { ociArch } from '../oci/platform.js'
import { BINFMT_CONF_DIR, BINFMT_DIR, QEMU_ARCH, binfmtHandlers, runSupport } from '../ops/platform-support.js'
import { UsageError, assertKnownFlags, one, type ParsedArgs } from './args.js'
import type { Io } from './io.js'

export const BINFMT_HELP = '  imagesmith binfmt [--install ARCH[,ARCH]...|all] [--json]   (list or register qemu-user-static emulators; --install needs root)'

/** A handler definition is one line; qemu's are under 400 bytes. */
const MAX_CONF_BYTES = 4096

export interface BinfmtOptions {
  readonly binfmtDir?: string
  readonly confDir?: string
  readonly host?: string
  /** Whether this process may register handlers (root); default: uid 0. */
  readonly root?: boolean
  /** Mounts binfmt_misc at the dir; default `mount -t binfmt_misc binfmt_misc DIR`. */
  readonly mount?: (dir: string) => void
}

export interface EmulatorRow {
  readonly platform: string
  readonly handler: string
  readonly interpreter: string
  readonly fixBinary: boolean
}

/** The registered qemu handlers by platform, and the platforms RUN steps can run for here. */
export function listEmulators(opts: BinfmtOptions = {}): { supported: string[]; emulators: EmulatorRow[] } {
  const dir = opts.binfmtDir ?? BINFMT_DIR
  const host = opts.host ?? ociArch()
  const byQemu = new Map(Object.entries(QEMU_ARCH).map(([oci, q]) => [`qemu-${q}`, oci]))
  const emulators = binfmtHandlers(dir).map((h) => ({
    platform: byQemu.has(h.name) ? `linux/${byQemu.get(h.name)}` : '-',
    handler: h.name,
    interpreter: h.interpreter,
    fixBinary: h.fixBinary,
  }))
  const supported = Object.keys(QEMU_ARCH).filter((a) => runSupport({ os: 'linux', architecture: a }, host, dir) !== undefined).map((a) => `linux/${a}`)
  return { supported, emulators }
}

export type InstallOutcome = 'native' | 'registered' | 'already registered' | 're-registered (enabled, with the F flag)'

/**
 * Registers the handler of each architecture from `<confDir>/qemu-<arch>.conf`, mounting binfmt_misc
 * first when it is absent. Idempotent: an enabled handler with the F flag is left alone; one without
 * F (registered by another tool) is replaced, since without F a container's rootfs would need qemu.
 * Everything is checked before the first write: root, each .conf present.
 */
export function installEmulators(arches: readonly string[], opts: BinfmtOptions = {}): { arch: string; outcome: InstallOutcome }[] {
  const dir = opts.binfmtDir ?? BINFMT_DIR
  const confDir = opts.confDir ?? BINFMT_CONF_DIR
  const host = opts.host ?? ociArch()
  const plan = arches.map((arch) => {
    const qemu = QEMU_ARCH[arch]
    if (qemu === undefined) {
      throw new ImagesmithError(ErrorCodes.UNSUPPORTED_PLATFORM, `binfmt: unknown architecture ${JSON.stringify(arch)} (known: ${Object.keys(QEMU_ARCH).join(', ')}, or all)`, { platform: `linux/${arch}` })
    }
    const handler = binfmtHandlers(dir).find((h) => h.name === `qemu-${qemu}`)
    // A disabled handler is not listed but still holds its name.
    const state = arch === host ? 'native' : handler?.fixBinary ? 'ok' : handler || existsSync(join(dir, `qemu-${qemu}`)) ? 'replace' : 'absent'
    return { arch, qemu, state, conf: join(confDir, `qemu-${qemu}.conf`) }
  })
  const work = plan.filter((p) => p.state === 'absent' || p.state === 'replace')
  if (work.length > 0 && !(opts.root ?? process.getuid?.() === 0)) {
    throw new ImagesmithError(ErrorCodes.BINFMT_NOT_PERMITTED, `binfmt: registering ${work.map((p) => `qemu-${p.qemu}`).join(', ')} needs root (run imagesmith binfmt --install as root)`, { path: join(dir, 'register') })
  }
  const lines = new Map<string, string>()
  for (const p of work) {
    const line = existsSync(p.conf) ? registrationLine(p.conf) : undefined
    if (line === undefined) {
      throw new ImagesmithError(ErrorCodes.EMULATOR_MISSING, `binfmt: no emulator for ${p.arch}: ${p.conf} is missing (apt-get install qemu-user-static)`, { arch: p.arch, path: p.conf })
    }
    lines.set(p.arch, line)
  }
  if (work.length > 0 && !existsSync(join(dir, 'register'))) {
    try {
      ;(opts.mount ?? mountBinfmt)(dir)
    } catch (e) {
      throw new ImagesmithError(ErrorCodes.BINFMT_NOT_PERMITTED, `binfmt: cannot mount binfmt_misc at ${dir}: ${(e as Error).message.split('\n')[0]}`, { path: dir }, { cause: e })
    }
  }
  return plan.map((p) => {
    if (p.state === 'native') return { arch: p.arch, outcome: 'native' as const }
    if (p.state === 'ok') return { arch: p.arch, outcome: 'already registered' as const }
    const handlerPath = join(dir, `qemu-${p.qemu}`)
    try {
      // A handler of the same name must go first: the kernel refuses a second registration (EEXIST).
      if (p.state === 'replace') writeFileSync(handlerPath, '-1')
      writeFileSync(join(dir, 'register'), lines.get(p.arch)!)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      throw new ImagesmithError(
        code === 'EPERM' || code === 'EACCES' || code === 'EROFS' ? ErrorCodes.BINFMT_NOT_PERMITTED : ErrorCodes.RUNTIME_FAILED,
        `binfmt: registering qemu-${p.qemu} from ${p.conf} failed: ${(e as Error).message}`,
        { arch: p.arch, path: join(dir, 'register') },
        { cause: e },
      )
    }
    return { arch: p.arch, outcome: p.state === 'replace' ? ('re-registered (enabled, with the F flag)' as const) : ('registered' as const) }
  })
}

/** The first `:name:type:…` line of a systemd-binfmt .conf (comments and blank lines skipped), read bounded. */
function registrationLine(path: string): string | undefined {
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.alloc(MAX_CONF_BYTES)
    const n = readSync(fd, buf, 0, buf.length, 0)
    return buf.toString('latin1', 0, n).split('\n').map((l) => l.trim()).find((l) => l.startsWith(':'))
  } finally {
    closeSync(fd)
  }
}

function mountBinfmt(dir: string): void {
  execFileSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 })
}

/** The architectures `all` stands for: every one with a qemu .conf here, the host's own left out. */
function allArches(confDir: string, host: string): string[] {
  return Object.entries(QEMU_ARCH).filter(([a, q]) => a !== host && existsSync(join(confDir, `qemu-${q}.conf`))).map(([a]) => a)
}

export async function binfmtCommand(args: ParsedArgs, io: Io, _signal?: AbortSignal, opts: BinfmtOptions = {}): Promise<number> {
  assertKnownFlags(args, ['--install', '--json'])
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`)
  const install = one(args, '--install')
  if (install !== undefined) {
    const names = install === 'all' ? allArches(opts.confDir ?? BINFMT_CONF_DIR, opts.host ?? ociArch()) : install.split(',').map((s) => s.trim()).filter(Boolean)
    if (names.length === 0) throw new UsageError('--install needs architectures (arm64,riscv64,…) or all')
    for (const r of installEmulators([...new Set(names)].slice(0, Object.keys(QEMU_ARCH).length), opts)) io.err(`binfmt: ${r.arch}: ${r.outcome}\n`)
  }
  const { supported, emulators } = listEmulators(opts)
  if (args.flags.has('--json')) {
    io.out(`${JSON.stringify({ supported, emulators: emulators.map((e) => e.handler) }, null, 2)}\n`)
    return 0
  }
  io.out(`supported platforms: ${supported.join(', ')}\n`)
  if (emulators.length === 0) {
    io.out('no binfmt_misc handlers (imagesmith binfmt --install arm64 registers one)\n')
    return 0
  }
  io.out('PLATFORM        HANDLER            F  INTERPRETER\n')
  for (const e of emulators) io.out(`${e.platform.padEnd(15)} ${e.handler.padEnd(18)} ${e.fixBinary ? 'F' : '-'}  ${e.interpreter}\n`)
  return 0
}
