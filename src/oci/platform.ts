import { ErrorCodes, InvalidArgumentError } from '../errors.js'
import type { Platform } from './types.js'

/** Node's `process.arch` names → the GOARCH names OCI platforms use. The one such table. */
export const OCI_ARCH_BY_NODE_ARCH: Readonly<Record<string, string>> = Object.freeze({
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
})

/** The OCI architecture of a Node arch name (the host's by default). */
export function ociArch(nodeArch: string = process.arch): string {
  return OCI_ARCH_BY_NODE_ARCH[nodeArch] ?? nodeArch
}

export function hostPlatform(): Platform {
  return { os: 'linux', architecture: ociArch() }
}

/** `linux/arm/v7` */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}

/** `os/arch[/variant]` as given to --platform; the host's platform when none is given. */
export function parsePlatform(p: string | undefined): Platform {
  if (!p) return hostPlatform()
  const parts = p.split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[a-z0-9_]+$/.test(x))) {
    throw new InvalidArgumentError(ErrorCodes.UNSUPPORTED_PLATFORM, `invalid platform ${JSON.stringify(p)} (os/arch[/variant] expected)`, { platform: p })
  }
  return parts[2] ? { os: parts[0]!, architecture: parts[1]!, variant: parts[2] } : { os: parts[0]!, architecture: parts[1]! }
}

/**
 * Platforms compared as containerd's `platforms.Normalize` spells them: `aarch64` is `arm64`,
 * `arm64/v8` is plain `arm64`, plain `arm` is `arm/v7`, `amd64/v1` is plain `amd64`.
 */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase()
  let architecture = p.architecture.toLowerCase()
  let variant = (p.variant ?? '').toLowerCase()
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64'
  else if (architecture === 'i386') architecture = '386'
  else if (architecture === 'aarch64') architecture = 'arm64'
  else if (architecture === 'armhf') [architecture, variant] = ['arm', 'v7']
  else if (architecture === 'armel') [architecture, variant] = ['arm', 'v6']
  if (/^[0-9]+$/.test(variant)) variant = `v${variant}`
  if (architecture === 'arm64' && variant === 'v8') variant = ''
  if (architecture === 'amd64' && variant === 'v1') variant = ''
  if (architecture === 'arm' && variant === '') variant = 'v7'
  return variant ? { os, architecture, variant } : { os, architecture }
}

/** Same OS, architecture and variant once both are normalised. */
export function platformMatches(offered: Platform, wanted: Platform): boolean {
  const a = normalizePlatform(offered)
  const b = normalizePlatform(wanted)
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '')
}
