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
