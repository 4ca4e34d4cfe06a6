/**
 * Package URLs (github.com/package-url/purl-spec) as syft writes them, which grype reads to tell a
 * package's ecosystem and, from `distro=`, the Linux release to match OS packages against.
 */
export interface Purl {
  readonly type: 'deb' | 'apk' | 'npm' | 'pypi'
  readonly namespace?: string
  readonly name: string
  readonly version: string
  readonly qualifiers?: Readonly<Record<string, string | undefined>>
}

/** Percent-encodes all but the purl spec's unreserved characters (`:` and `+` of versions included). */
const enc = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

export function formatPurl(p: Purl): string {
  const ns = p.namespace ? `${p.namespace.split('/').map(enc).join('/')}/` : ''
  const q = Object.entries(p.qualifiers ?? {}).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `pkg:${p.type}/${ns}${enc(p.name)}@${enc(p.version)}${q.length > 0 ? `?${q.map(([k, v]) => `${k}=${enc(v)}`).join('&')}` : ''}`
}
