import { formatPlatform } from '../oci/platform.js'
import type { Platform } from '../oci/types.js'

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

export { formatPlatform }
