import { ErrorCodes, ImagesmithError, isImagesmithError } from '../errors.js'
import { buildCacheArtifact, CACHE_CONFIG_MEDIA_TYPE, INLINE_CACHE_FIELD, MAX_CACHE_CONFIG_BYTES, parseCacheConfig, parseCacheManifest, parseCacheRecords, type CacheEntry } from '../cache/format.js'
import type { CacheSource } from '../cache/sharing.js'
import { MediaType, isDigest } from '../oci/media-types.js'
import { normalizePlatform } from '../oci/platform.js'
import type { Descriptor, FinalImage, ImageConfig, ImageIndex, Manifest, Platform } from '../oci/types.js'
import { parseReference, type ImageReference } from '../reference/reference.js'
import { sha256, type RegistryClient } from '../registry/client.js'
import type { Endpoint } from '../registry/endpoints.js'
import { pushImage, type PushBase, type PushResult } from '../registry/push.js'
import { pushSender } from '../registry/push-sender.js'
import type { BlobStore } from '../store/blob-store.js'

/** A registry cache as imported: its records, and the base a push mounts its layers from. */
export interface ImportedRegistryCache {
  readonly source: CacheSource
  /** The cache manifest (in the store), so a push to the same registry mounts hit layers from the cache's repository. */
  readonly base: PushBase
}

/**
 * Reads the cache at `ref`: its manifest, then its config (a cache manifest's, or an image's inline
 * records); a layer blob is fetched only when something reads a hit layer. Mirrors are tried first, as for
 * pulls. A ref that is missing or unreachable, or is not a cache, is a warning (the build goes on
 * without it), as BuildKit's importer does.
 */
export async function importRegistryCache(
  ref: string,
  client: RegistryClient,
  blobs: BlobStore,
  platform: Platform,
  warn: (message: string) => void,
  signal?: AbortSignal,
): Promise<ImportedRegistryCache | undefined> {
  const name = `type=registry,ref=${ref}`
  let parsed: ImageReference
  try {
    parsed = parseReference(ref)
  } catch (e) {
    warn(`cache ${name} ignored: ${(e as Error).message}`)
    return undefined
  }
  let lastError: unknown
  for (const ep of client.pullEndpoints(parsed.domain)) {
    try {
      return await readCache(ep, parsed, name, client, blobs, platform, signal)
    } catch (e) {
      if (isImagesmithError(e) && (e.code === ErrorCodes.ABORTED || e.code === ErrorCodes.CACHE_INVALID)) {
        if (e.code === ErrorCodes.CACHE_INVALID) warn(`${e.message}; ignored`)
        if (e.code === ErrorCodes.ABORTED) throw e
        return undefined
      }
      lastError = e
      if (!ep.mirror) break
    }
  }
  warn(`cache ${name} not imported: ${(lastError as Error)?.message ?? 'no registry answered'}; the build goes on without it`)
  return undefined
}

async function readCache(ep: Endpoint, ref: ImageReference, name: string, client: RegistryClient, blobs: BlobStore, platform: Platform, signal?: AbortSignal): Promise<ImportedRegistryCache> {
  let top = await client.getManifest(ep, ref.path, ref.digest ?? ref.tag ?? 'latest', signal)
  if (ref.digest && top.digest !== ref.digest) throw new ImagesmithError(ErrorCodes.DIGEST_MISMATCH, `${name}: the registry sent ${top.digest}`, { expected: ref.digest, actual: top.digest })
  const doc = parseDoc(top.bytes, name)
  // An image index (an inline cache of a multi-platform image): the build platform's image.
  if (Array.isArray(doc.manifests)) {
    const want = normalizePlatform(platform)
    const desc = doc.manifests.slice(0, 1000).filter((m) => isDigest(m?.digest)).find((m) => m?.platform && normalizePlatform(m.platform).os === want.os && normalizePlatform(m.platform).architecture === want.architecture && (normalizePlatform(m.platform).variant ?? '') === (want.variant ?? ''))
    if (!desc) throw new ImagesmithError(ErrorCodes.CACHE_INVALID, `cache ${name} is an image index with no image for ${want.os}/${want.architecture}`, { source: name, field: 'manifests' })
    top = await client.getManifest(ep, ref.path, desc.digest, signal)
    if (top.digest !== desc.digest) throw new ImagesmithError(ErrorCodes.DIGEST_MISMATCH, `${name}: the registry sent ${top.digest} for ${desc.digest}`, { expected: desc.digest, actual: top.digest })
  }
  const manifestDoc = parseDoc(top.bytes, name)
  const inline = manifestDoc.config?.mediaType === MediaType.OciConfig || manifestDoc.config?.mediaType === MediaType.DockerConfig
  let records
  let layers: readonly Descriptor[]
  if (inline) {
    // An image: its config's inline records name its own layers.
    const parsed = parseCacheManifest(Buffer.from(JSON.stringify({ ...manifestDoc, config: { ...manifestDoc.config, mediaType: CACHE_CONFIG_MEDIA_TYPE } })), name)
    layers = parsed.layers
    const config = await readSmallBlob(client, ep, ref.path, parsed.config, signal)
    let value: unknown
    try {
      value = (JSON.parse(config.toString('utf8')) as Record<string, unknown>)[INLINE_CACHE_FIELD]
    } catch {
      value = undefined
    }
    if (value === undefined) throw new ImagesmithError(ErrorCodes.CACHE_INVALID, `cache ${name} is an image without inline cache records (${INLINE_CACHE_FIELD} in its config)`, { source: name, field: INLINE_CACHE_FIELD })
    records = parseCacheRecords(value, layers, name)
  } else {
    const parsed = parseCacheManifest(top.bytes, name)
    layers = parsed.layers
    records = parseCacheConfig(await readSmallBlob(client, ep, ref.path, parsed.config, signal), layers, name)
  }
  await blobs.putBytes(top.bytes)
  return {
    source: { name, records, remote: { type: 'registry', registry: ref.domain, repository: ref.path, ref: name } },
    base: { ref: ref.full, digest: top.digest },
  }
}

function parseDoc(bytes: Buffer, name: string): Partial<Manifest & ImageIndex> {
  let doc: unknown
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    doc = undefined
  }
  if (typeof doc !== 'object' || doc === null) throw new ImagesmithError(ErrorCodes.CACHE_INVALID, `cache ${name} is not a usable imagesmith cache: its manifest is not a JSON object`, { source: name, field: 'manifest' })
  return doc as Partial<Manifest & ImageIndex>
}

/** A config blob, bounded and checked against its digest. */
async function readSmallBlob(client: RegistryClient, ep: Endpoint, repository: string, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > MAX_CACHE_CONFIG_BYTES) throw new ImagesmithError(ErrorCodes.CACHE_INVALID, `cache config ${desc.digest} is ${desc.size} bytes (at most ${MAX_CACHE_CONFIG_BYTES})`, { source: repository, field: 'config.size' })
  const chunks: Buffer[] = []
  for await (const c of client.blobStream(ep, repository, desc, signal)) chunks.push(c as Buffer)
  const bytes = Buffer.concat(chunks)
  if (sha256(bytes) !== desc.digest) throw new ImagesmithError(ErrorCodes.DIGEST_MISMATCH, `cache config from ${ep.host}/${repository} does not match ${desc.digest}`, { expected: desc.digest, actual: sha256(bytes) })
  return bytes
}

/**
 * Pushes the cache artifact for `entries` to `ref`: the layers (skipped when the repository has them,
 * mounted from `bases` on the same registry, else uploaded), the config, then the manifest under the tag.
 */
export async function exportRegistryCache(entries: Iterable<CacheEntry>, ref: string, client: RegistryClient, blobs: BlobStore, bases: readonly PushBase[], signal?: AbortSignal): Promise<PushResult> {
  const art = buildCacheArtifact(entries, sha256)
  await blobs.putBytes(art.config)
  await blobs.putBytes(art.manifest)
  // The push speaks of images; a cache artifact is one with a config of its own type.
  const artifact: FinalImage = {
    kind: 'image',
    manifest: JSON.parse(art.manifest.toString('utf8')) as Manifest,
    manifestDigest: art.manifestDigest,
    manifestSize: art.manifest.length,
    config: {} as ImageConfig,
    configDigest: art.configDigest,
    layers: art.layers,
  }
  return pushImage(artifact, { blobs, tags: [ref], senderFor: (r) => pushSender(client, r), bases, ...(signal ? { signal } : {}) })
}

