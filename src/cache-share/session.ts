import { ErrorCodes, isImagesmithError } from '../errors.js'
import { configDoc, INLINE_CACHE_FIELD, type CacheConfigDoc, type CacheEntry } from '../cache/format.js'
import { LocalCacheBackend } from '../cache/local.js'
import { SharingCacheBackend, type CacheSource } from '../cache/sharing.js'
import type { Digest } from '../oci/media-types.js'
import type { ImageConfig, LayerRef, Platform } from '../oci/types.js'
import type { RegistryClient } from '../registry/client.js'
import type { PushBase } from '../registry/push.js'
import type { Store } from '../store/store.js'
import { exportLocalCache, importLocalCache } from './local-dir.js'
import type { CacheExportSpec, CacheImportSpec } from './options.js'
import { exportRegistryCache, importRegistryCache } from './registry.js'

/** What the build's caches did, for the build result. */
export interface CacheReport {
  /** Layer steps answered by an imported cache (not the store's own). */
  readonly imported: number
  /** Each export written: where, and the cache manifest's digest. */
  readonly exported: readonly { readonly type: 'registry' | 'local' | 'inline'; readonly to?: string; readonly digest?: Digest; readonly records: number }[]
  /** Caches not imported, blobs refused, exports that failed: the build went on (see README). */
  readonly warnings: readonly string[]
}

export interface CacheShare {
  readonly backend: SharingCacheBackend
  /** Imported registry caches, so a push to their registry mounts hit layers instead of uploading them. */
  readonly bases: readonly PushBase[]
  readonly warnings: string[]
}

/**
 * Reads every `cacheFrom` (manifests and configs only) and puts them behind the store's own cache.
 * Nothing here fails the build: a cache that cannot be read is a warning.
 */
export async function openCacheShare(imports: readonly CacheImportSpec[], store: Store, client: RegistryClient, platform: Platform, signal?: AbortSignal): Promise<CacheShare> {
  const warnings: string[] = []
  const warn = (m: string) => void warnings.push(m)
  const sources: CacheSource[] = []
  const bases: PushBase[] = []
  for (const spec of imports) {
    if (spec.type === 'registry') {
      const got = await importRegistryCache(spec.ref, client, store.blobs, platform, warn, signal)
      if (got) {
        sources.push(got.source)
        bases.push(got.base)
      }
    } else {
      const got = await importLocalCache(spec.src, spec.tag ?? 'latest', warn)
      if (got) sources.push(got)
    }
  }
  return { backend: new SharingCacheBackend(new LocalCacheBackend(store), store.blobs, sources, warn), bases, warnings }
}

/** The records an export of `mode` writes: min, the keys whose layers the final images hold; max, every key the build hit or made. */
export function entriesFor(share: CacheShare, mode: 'min' | 'max', finalLayers: ReadonlySet<string>): CacheEntry[] {
  const out: CacheEntry[] = []
  for (const [key, layer] of share.backend.used) if (mode === 'max' || finalLayers.has(layer.digest)) out.push({ key, layer })
  return out
}

/** The image config with the inline cache records of its own layers (`cacheTo: [{ type: 'inline' }]`). */
export function withInlineCache(config: ImageConfig, share: CacheShare, layers: readonly LayerRef[]): ImageConfig {
  const doc: CacheConfigDoc = configDoc(entriesFor(share, 'min', new Set(layers.map((l) => l.digest))))
  return { ...config, [INLINE_CACHE_FIELD]: doc } as ImageConfig
}

/**
 * Writes every registry and local `cacheTo`. A failed export is a warning, not an error: the image is
 * built and named in the store, and the build's result stands (buildx fails the build instead; a
 * caller that needs the export checks `cache.warnings`).
 */
export async function exportCaches(
  exports: readonly CacheExportSpec[],
  share: CacheShare,
  finalLayers: ReadonlySet<string>,
  store: Store,
  client: RegistryClient,
  signal?: AbortSignal,
): Promise<CacheReport['exported']> {
  const done: { type: 'registry' | 'local' | 'inline'; to?: string; digest?: Digest; records: number }[] = []
  for (const spec of exports) {
    if (spec.type === 'inline') {
      done.push({ type: 'inline', records: entriesFor(share, 'min', finalLayers).length })
      continue
    }
    const entries = entriesFor(share, spec.mode ?? 'min', finalLayers)
    const to = spec.type === 'registry' ? spec.ref : spec.dest
    if (entries.length === 0) {
      // Nothing keyed went through this build's cache (a rootless build keeps its own): an empty
      // export would replace a useful one.
      share.warnings.push(`cache export type=${spec.type},${spec.type === 'registry' ? 'ref' : 'dest'}=${to} skipped: no cache records in this build`)
      continue
    }
    try {
      if (spec.type === 'registry') {
        const r = await exportRegistryCache(entries, spec.ref, client, store.blobs, share.bases, signal)
        done.push({ type: 'registry', to, digest: r.digest, records: entries.length })
      } else {
        const r = await exportLocalCache(entries, spec.dest, spec.tag ?? 'latest', store.blobs)
        done.push({ type: 'local', to, digest: r.digest, records: entries.length })
      }
    } catch (e) {
      if (isImagesmithError(e) && e.code === ErrorCodes.ABORTED) throw e
      share.warnings.push(`cache export type=${spec.type},${spec.type === 'registry' ? 'ref' : 'dest'}=${to} failed: ${(e as Error).message}`)
    }
  }
  return done
}
