/**
 * Every folder of a store, named in one place. Nothing outside `store/` joins paths onto a store's
 * root: it asks its {@link StoreLayout}. All of it lives under one root so temp files and renames
 * stay on one filesystem.
 *
 * ```
 * <root>/blobs/sha256/<hex>        content-addressed blobs (layers, configs, manifests)
 * <root>/tmp/                      temp files and dirs of writers (blobs, ADD downloads)
 * <root>/cache/<hex>.json          vertex cache key → result
 * <root>/image-lookups/<hex>.json  memoised path lookups in image layers
 * <root>/snapshots/<hex>[.json]    unpacked layers (overlay lower dirs) and their metadata
 * <root>/cache-mounts/<id>         RUN --mount=type=cache dirs
 * <root>/work/                     scratch of running steps (bundles, upper dirs)
 * <root>/statcache/<hex>.json      host file stat → content hash, per build context
 * <root>/layer-members/<hex>.json  gzip member index of layer blob <hex> (store/member-index.ts)
 * <root>/layer-files/<hex>.json    entries of layer blob <hex> as it was written (store/layer-summary.ts)
 * <root>/layer-zstd/<hex>-<l>-<v>.json  the zstd blob gzip layer <hex> became at level l with zstd v (layer/zstd-layer.ts)
 * <root>/probes/<hex>.json         host probe answers (runtime, overlay) per host identity (store/probe-record.ts)
 * <root>/refs/<hex>.json           registry tag → the digest it last resolved to (offline pulls)
 * <root>/images/<hex>.json         local image name (a build's tag) → manifest digest, created, size
 * <root>/remote/<hex>.json         where blob <hex> can be fetched from while the store lacks it (store/remote-blobs.ts)
 * <root>/leases/<tag>-<r>.json     what a running build holds (cache keys, blobs, snapshots); prune skips it
 * <root>/owners/<id>.lock          one per live process using the store, flock-held (util/owner.ts)
 * <root>/gc.lock                   a running prune's owner tag
 * ```
 */
import { join } from 'node:path'

/** Subfolder names (relative to the store root). */
export const StoreDirs = Object.freeze({
  blobs: join('blobs', 'sha256'),
  tmp: 'tmp',
  cache: 'cache',
  imageLookups: 'image-lookups',
  snapshots: 'snapshots',
  cacheMounts: 'cache-mounts',
  work: 'work',
  statCache: 'statcache',
  layerMembers: 'layer-members',
  layerFiles: 'layer-files',
  layerZstd: 'layer-zstd',
  probes: 'probes',
  refs: 'refs',
  images: 'images',
  remote: 'remote',
  leases: 'leases',
  owners: 'owners',
})

export type StoreDir = keyof typeof StoreDirs

/** Folders whose entries are written through temp names and are swept of dead writers' temps. */
export const SWEPT_DIRS: readonly StoreDir[] = Object.freeze(['tmp', 'cache', 'imageLookups', 'snapshots', 'statCache', 'images', 'layerMembers', 'layerFiles', 'layerZstd', 'probes', 'remote'] as const)

const hex = (digest: string): string => digest.replace(/^sha256:/, '')

export class StoreLayout {
  readonly root: string

  constructor(root: string) {
    this.root = root
  }

  dir(name: StoreDir): string {
    return join(this.root, StoreDirs[name])
  }

  /** `blobs/sha256/<hex>`; the caller has checked that `digest` is a sha256 digest. */
  blob(digest: string): string {
    return join(this.dir('blobs'), hex(digest))
  }

  cacheEntry(key: string): string {
    return join(this.dir('cache'), `${hex(key)}.json`)
  }

  /** Where the digest a registry reference last resolved to is kept; `key` is a sha256 of the reference. */
  registryRef(key: string): string {
    return join(this.dir('refs'), `${hex(key)}.json`)
  }

  /** Where local image name `key` (a sha256 of its normalised name) is recorded. */
  imageName(key: string): string {
    return join(this.dir('images'), `${hex(key)}.json`)
  }

  /** Where blob `digest` can be fetched from while the store lacks it (store/remote-blobs.ts). */
  remoteBlob(digest: string): string {
    return join(this.dir('remote'), `${hex(digest)}.json`)
  }

  /** Held by a running prune (its pid inside); builds wait on it before they look an item up. */
  gcLock(): string {
    return join(this.root, 'gc.lock')
  }

  imageLookup(key: string): string {
    return join(this.dir('imageLookups'), `${hex(key)}.json`)
  }

  /** Where layer `diffId` is unpacked once and reused as an overlay lower dir. */
  snapshot(diffId: string): string {
    return join(this.dir('snapshots'), hex(diffId))
  }

  /** Persistent dir for `RUN --mount=type=cache`, keyed by the mount id. */
  cacheMount(id: string): string {
    return join(this.dir('cacheMounts'), encodeURIComponent(id))
  }
}
