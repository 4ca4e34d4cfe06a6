import type { ImageFile } from './image-files.js'
import type { Purl } from './purl.js'

/** A package a cataloger found: its purl parts, the file it was read from and the layer that put it there. */
export interface FoundPackage {
  readonly purl: Purl
  readonly source: string
  readonly layer: ImageFile['layer']
}

/** The release the image says it is (/etc/os-release, else /usr/lib/os-release): `ID` and `VERSION_ID`. */
export interface OsRelease {
  readonly id: string
  readonly versionId?: string
}

export const OS_RELEASE_PATHS = ['etc/os-release', 'usr/lib/os-release'] as const

export function parseOsRelease(files: readonly ImageFile[]): OsRelease | undefined {
  for (const path of OS_RELEASE_PATHS) {
    const f = files.find((x) => x.path === path)
    if (!f) continue
    const vars = new Map<string, string>()
    for (const line of f.data.toString('utf8').split('\n')) {
      const eq = line.indexOf('=')
      if (eq <= 0) continue
      vars.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim().replace(/^(["'])(.*)\1$/, '$2'))
    }
    const id = vars.get('ID')
    if (id) return { id, ...(vars.get('VERSION_ID') ? { versionId: vars.get('VERSION_ID')! } : {}) }
  }
  return undefined
}

const distro = (os: OsRelease | undefined): string | undefined => (os ? (os.versionId ? `${os.id}-${os.versionId}` : os.id) : undefined)

/** RFC 822-style stanzas (dpkg status, apk installed): blank-line separated, `Key: value`, continuation lines start with a space. */
function stanzas(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = []
  let cur = new Map<string, string>()
  let last: string | undefined
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur.size > 0) out.push(cur)
      cur = new Map()
      last = undefined
      continue
    }
    if ((line[0] === ' ' || line[0] === '\t') && last !== undefined) continue // a long description's continuation
    const i = line.indexOf(':')
    if (i <= 0) continue
    last = line.slice(0, i)
    cur.set(last, line.slice(i + 1).trim())
  }
  if (cur.size > 0) out.push(cur)
  return out
}

export const isDpkgPath = (p: string): boolean => p === 'var/lib/dpkg/status' || /^var\/lib\/dpkg\/status\.d\/[^/]+$/.test(p)
export const APK_PATH = 'lib/apk/db/installed'

/**
 * dpkg's database (`/var/lib/dpkg/status`, and the distroless `status.d/` files): installed packages
 * only, i.e. a `Status` whose state is `installed` (a removed package keeps `deinstall ok config-files`);
 * `status.d/` stanzas have no Status and are installed. Purl as syft writes it:
 * `pkg:deb/<ID>/<name>@<version>?arch=<arch>&distro=<ID>-<VERSION_ID>`.
 */
export function dpkgPackages(files: readonly ImageFile[], os: OsRelease | undefined): FoundPackage[] {
  const out: FoundPackage[] = []
  for (const f of files) {
    if (!isDpkgPath(f.path)) continue
    for (const s of stanzas(f.data.toString('utf8'))) {
      const name = s.get('Package')
      const version = s.get('Version')
      if (!name || !version) continue
      const status = s.get('Status')
      if (status !== undefined && status.split(/\s+/)[2] !== 'installed') continue
      const upstream = s.get('Source')?.split(' ')[0]
      out.push({
        purl: { type: 'deb', namespace: os?.id ?? 'debian', name, version, qualifiers: { arch: s.get('Architecture'), distro: distro(os), ...(upstream && upstream !== name ? { upstream } : {}) } },
        source: `/${f.path}`,
        layer: f.layer,
      })
    }
  }
  return out
}

/** apk's database (`/lib/apk/db/installed`: `P:` name, `V:` version, `A:` arch, `o:` origin). */
export function apkPackages(files: readonly ImageFile[], os: OsRelease | undefined): FoundPackage[] {
  const f = files.find((x) => x.path === APK_PATH)
  if (!f) return []
  const out: FoundPackage[] = []
  for (const s of stanzas(f.data.toString('utf8'))) {
    const name = s.get('P')
    const version = s.get('V')
    if (!name || !version) continue
    const origin = s.get('o')
    out.push({
      purl: { type: 'apk', namespace: os?.id ?? 'alpine', name, version, qualifiers: { arch: s.get('A'), distro: distro(os), ...(origin && origin !== name ? { upstream: origin } : {}) } },
      source: `/${f.path}`,
      layer: f.layer,
    })
  }
  return out
}
