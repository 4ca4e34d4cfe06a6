import { promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { ErrorCodes, ImagesmithError, isImagesmithError } from '../errors.js'
import { buildCacheArtifact, parseCacheConfig, parseCacheManifest, MAX_CACHE_CONFIG_BYTES, type CacheEntry } from '../cache/format.js'
import type { CacheSource } from '../cache/sharing.js'
import { MediaType, isDigest, type Digest } from '../oci/media-types.js'
import type { ImageIndex } from '../oci/types.js'
import { createAtomicWriter, writeFileAtomic } from '../store/atomic-write.js'
import type { BlobStore } from '../store/blob-store.js'
import { sha256 } from '../util/canonical-json.js'

const REF_NAME = 'org.opencontainers.image.ref.name'
const MAX_INDEX_BYTES = 4 << 20
/** Blobs a prune looks at in one cache directory: past this it stops (the rest stays). */
const MAX_PRUNE_ENTRIES = 100_000

const blobPath = (dir: string, digest: Digest): string => join(dir, 'blobs', 'sha256', digest.slice(7))

/** Reads a file of at most `max` bytes, checked against `digest` when given. */
async function readBounded(path: string, max: number, source: string, digest?: Digest): Promise<Buffer> {
  const st = await fsp.stat(path)
  if (st.size > max) throw new ImagesmithError(ErrorCodes.CACHE_INVALID, `cache ${source}: ${path} is ${st.size} bytes (at most ${max})`, { source, field: path })
  const bytes = await fsp.readFile(path)
  if (digest && sha256(bytes) !== digest) throw new ImagesmithError(ErrorCodes.CACHE_INVALID, `cache ${source}: ${path} does not match its digest ${digest}`, { source, field: path })
  return bytes
}

/**
 * Reads the cache an OCI layout at `src` holds under `tag`: index.json, the manifest and its config;
 * a hit layer is copied into the store (checked against its digest) only when something reads it. A
 * directory without a cache is a warning; the build goes on without it.
 */
export async function importLocalCache(src: string, tag: string, warn: (message: string) => void): Promise<CacheSource | undefined> {
  const name = `type=local,src=${src}`
  try {
    const index = JSON.parse((await readBounded(join(src, 'index.json'), MAX_INDEX_BYTES, name)).toString('utf8')) as Partial<ImageIndex>
    const manifests = Array.isArray(index.manifests) ? index.manifests.slice(0, 10_000) : []
    const desc = manifests.find((m) => m?.annotations?.[REF_NAME] === tag)
    if (!desc || !isDigest(desc.digest)) throw new ImagesmithError(ErrorCodes.CACHE_INVALID, `cache ${name} has no manifest tagged ${tag} in index.json`, { source: name, field: 'index.json' })
    const manifest = parseCacheManifest(await readBounded(blobPath(src, desc.digest), MAX_INDEX_BYTES, name, desc.digest), name)
    const records = parseCacheConfig(await readBounded(blobPath(src, manifest.config.digest), MAX_CACHE_CONFIG_BYTES, name, manifest.config.digest), manifest.layers, name)
    return { name, records, remote: { type: 'local', dir: resolve(src), ref: name } }
  } catch (e) {
    const why = isImagesmithError(e) ? e.message : (e as NodeJS.ErrnoException).code === 'ENOENT' ? `cache ${name} not found (${(e as NodeJS.ErrnoException).path})` : `cache ${name}: ${(e as Error).message}`
    warn(`${why}; the build goes on without it`)
    return undefined
  }
}

/**
 * Writes the cache for `entries` as an OCI layout at `dest`: blobs first (each through a temp name),
 * then index.json (one manifest, tagged `tag`) atomically, then every blob the new export does not
 * name is removed, so the directory does not grow without bound (buildx's local cache does the same).
 */
export async function exportLocalCache(entries: Iterable<CacheEntry>, dest: string, tag: string, blobs: BlobStore): Promise<{ digest: Digest; removed: number }> {
  const art = buildCacheArtifact(entries, sha256)
  const dir = join(dest, 'blobs', 'sha256')
  await fsp.mkdir(dir, { recursive: true })
  const put = async (digest: Digest, write: (w: ReturnType<typeof createAtomicWriter>) => Promise<void>) => {
    if (await exists(blobPath(dest, digest))) return
    const w = createAtomicWriter(dir, 'blob')
    try {
      await write(w)
      await w.commit(blobPath(dest, digest))
    } catch (e) {
      await w.abort()
      throw e
    }
  }
  for (const l of art.layers) await put(l.digest, (w) => pipeline(blobs.open(l.digest), w.stream))
  for (const [digest, bytes] of [[art.configDigest, art.config], [art.manifestDigest, art.manifest]] as const) {
    if (!(await exists(blobPath(dest, digest)))) await writeFileAtomic(blobPath(dest, digest), bytes)
  }
  await writeFileAtomic(join(dest, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [{ mediaType: MediaType.OciManifest, digest: art.manifestDigest, size: art.manifest.length, annotations: { [REF_NAME]: tag } }],
  }
  await writeFileAtomic(join(dest, 'index.json'), JSON.stringify(index))
  const keep = new Set<string>([art.manifestDigest, art.configDigest, ...art.layers.map((l) => l.digest)].map((d) => d.slice(7)))
  let removed = 0
  const names = await fsp.readdir(dir)
  for (const n of names.slice(0, MAX_PRUNE_ENTRIES)) {
    if (keep.has(n) || !/^[a-f0-9]{64}$/.test(n)) continue
    await fsp.rm(join(dir, n), { force: true })
    removed++
  }
  return { digest: art.manifestDigest, removed }
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path)
    return true
  } catch {
    return false
  }
}
