import type { FoundPackage } from './catalog-os.js'
import type { ImageFile } from './image-files.js'

/** `…/node_modules/NAME/package.json` or `…/node_modules/@SCOPE/NAME/package.json`. */
export const isNodeModulePackageJson = (p: string): boolean => /(?:^|\/)node_modules\/(?:@[^/]+\/)?[^/@][^/]*\/package\.json$/.test(p)
/** A lockfile outside node_modules (an app's own `package-lock.json`). */
export const isPackageLock = (p: string): boolean => (p === 'package-lock.json' || p.endsWith('/package-lock.json')) && !p.includes('node_modules/')
export const isDistInfoMetadata = (p: string): boolean => /\.dist-info\/METADATA$/.test(p)

/** Most entries read from one lockfile, and how deep a v1 lockfile's `dependencies` nest. */
const MAX_LOCK_ENTRIES = 100_000
const MAX_LOCK_DEPTH = 64

function json(f: ImageFile): unknown {
  try {
    return JSON.parse(f.data.toString('utf8'))
  } catch {
    return undefined
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
const npm = (name: string, version: string, f: ImageFile): FoundPackage => {
  const scoped = name.startsWith('@') && name.includes('/')
  return {
    purl: { type: 'npm', ...(scoped ? { namespace: name.slice(0, name.indexOf('/')) } : {}), name: scoped ? name.slice(name.indexOf('/') + 1) : name, version },
    source: `/${f.path}`,
    layer: f.layer,
  }
}

/**
 * npm packages: every `node_modules/**\/package.json` (what syft's image scan reads), and the
 * entries of an app's `package-lock.json` (v2/v3 `packages`, v1 `dependencies`) that are installed
 * for production (`dev` ones left out, links skipped): a bundled app shipped without its
 * node_modules still lists what it was built from. The same name@version is one package.
 */
export function npmPackages(files: readonly ImageFile[]): FoundPackage[] {
  const out: FoundPackage[] = []
  for (const f of files) {
    if (!isNodeModulePackageJson(f.path)) continue
    const doc = json(f) as { name?: unknown; version?: unknown } | undefined
    const name = str(doc?.name)
    const version = str(doc?.version)
    if (name && version) out.push(npm(name, version, f))
  }
  for (const f of files) {
    if (!isPackageLock(f.path)) continue
    const doc = json(f) as { packages?: unknown; dependencies?: unknown } | undefined
    let n = 0
    if (doc?.packages && typeof doc.packages === 'object') {
      for (const [key, raw] of Object.entries(doc.packages as Record<string, unknown>)) {
        if (++n > MAX_LOCK_ENTRIES) break
        const e = raw as { name?: unknown; version?: unknown; dev?: unknown; link?: unknown } | null
        if (key === '' || !e || typeof e !== 'object' || e.link === true || e.dev === true) continue
        const at = key.lastIndexOf('node_modules/')
        if (at < 0) continue // a workspace folder, not an installed package
        const name = str(e.name) ?? key.slice(at + 'node_modules/'.length)
        const version = str(e.version)
        if (name && version) out.push(npm(name, version, f))
      }
    } else if (doc?.dependencies && typeof doc.dependencies === 'object') {
      const walk = (deps: Record<string, unknown>, depth: number): void => {
        if (depth > MAX_LOCK_DEPTH) return
        for (const [name, raw] of Object.entries(deps)) {
          if (++n > MAX_LOCK_ENTRIES) return
          const e = raw as { version?: unknown; dev?: unknown; dependencies?: unknown } | null
          if (!e || typeof e !== 'object' || e.dev === true) continue
          const version = str(e.version)
          if (version && !version.startsWith('file:')) out.push(npm(name, version, f))
          if (e.dependencies && typeof e.dependencies === 'object') walk(e.dependencies as Record<string, unknown>, depth + 1)
        }
      }
      walk(doc.dependencies as Record<string, unknown>, 0)
    }
  }
  return out
}

/** Python distributions: `*.dist-info/METADATA` headers `Name` and `Version`; the name normalised as PEP 503 (and purl) say. */
export function pythonPackages(files: readonly ImageFile[]): FoundPackage[] {
  const out: FoundPackage[] = []
  for (const f of files) {
    if (!isDistInfoMetadata(f.path)) continue
    // The headers end at the first blank line; the long description after it is not read.
    const text = f.data.subarray(0, 64 << 10).toString('utf8')
    const head = text.split(/\r?\n\r?\n/, 1)[0]!
    let name: string | undefined
    let version: string | undefined
    for (const line of head.split(/\r?\n/)) {
      if (line.startsWith('Name:')) name ??= line.slice(5).trim()
      else if (line.startsWith('Version:')) version ??= line.slice(8).trim()
    }
    if (name && version) out.push({ purl: { type: 'pypi', name: name.toLowerCase().replace(/[-_.]+/g, '-'), version }, source: `/${f.path}`, layer: f.layer })
  }
  return out
}
