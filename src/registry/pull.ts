import { ErrorCodes, ImagesmithError, abortError, isImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { Descriptor, Platform } from '../oci/types.js'
import type { ImageReference } from '../reference/reference.js'
import { resolveImage, type BlobFetcher, type ResolvedImage } from '../sources/resolve.js'
import type { BlobStore } from '../store/blob-store.js'
import { mismatch, type FetchedManifest, type RegistryClient } from './client.js'
import type { Endpoint } from './endpoints.js'
import { loadRefRecord, saveRefRecord } from './ref-records.js'

/** What a tag or digest resolved to at one endpoint. */
interface ResolvedTop {
  readonly manifest: FetchedManifest
  /** Endpoints in the order to try for the image's other documents and blobs: the one that answered first. */
  readonly endpoints: readonly Endpoint[]
  /** Resolved from the store's record because no registry could be reached. */
  readonly offline?: boolean
}

async function stored(blobs: BlobStore, digest: Digest): Promise<FetchedManifest> {
  const bytes = await blobs.readBytes(digest)
  const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown }
  return { bytes, digest, mediaType: doc.mediaType ?? '' }
}

export interface PulledImage extends ResolvedImage {
  /** The digest the reference resolved to: the index's when the registry serves one, else the manifest's. */
  readonly digest: Digest
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])

/**
 * Pulls for one build (or one `imagesmith pull`): a tag is resolved once and every later use of it
 * in the same session gets that digest; every resolution is recorded in {@link bases}.
 */
export class PullSession {
  readonly client: RegistryClient
  readonly #tops = new Map<string, Promise<ResolvedTop>>()
  readonly #bases = new Map<string, Digest>()

  constructor(client: RegistryClient) {
    this.client = client
  }

  /** `[{ ref, digest }]` for every registry reference pulled, in first-use order. */
  get bases(): { ref: string; digest: Digest }[] {
    return [...this.#bases].map(([ref, digest]) => ({ ref, digest }))
  }

  /**
   * Records a base that resolved without the registry (a locally tagged image, as Docker uses a
   * pulled or built one): it belongs in the build's bases like a pulled one, and a push to its
   * registry mounts blobs from its repository (the registry answers 202 when it has none of them).
   */
  recordLocal(ref: ImageReference, digest: Digest): void {
    if (!this.#bases.has(ref.full)) this.#bases.set(ref.full, digest)
  }

  /**
   * Resolves `ref` to the image for `platform` and brings its manifest, config and layers into
   * `blobs`. Mirrors are tried first; one that fails falls back to the next, then the registry.
   */
  async pull(ref: ImageReference, platform: Platform, blobs: BlobStore, signal?: AbortSignal): Promise<PulledImage> {
    try {
      return await this.#pull(ref, platform, blobs, signal)
    } catch (e) {
      // Whatever was cut short by the abort (a socket, a body read, a queued download) reports the abort.
      if (signal?.aborted) throw abortError(signal)
      throw noSpace(e, blobs.root) ?? e
    }
  }

  async #pull(ref: ImageReference, platform: Platform, blobs: BlobStore, signal?: AbortSignal): Promise<PulledImage> {
    const top = await this.#top(ref, blobs, signal)
    await blobs.putBytes(top.manifest.bytes)
    this.#bases.set(ref.full, top.manifest.digest)
    const fetcher: BlobFetcher = { fetch: (desc, s) => this.#fetch(top.endpoints, ref, desc, blobs, s ?? signal) }
    const root: Descriptor = { mediaType: top.manifest.mediaType, digest: top.manifest.digest, size: top.manifest.bytes.length }
    const image = await resolveImage({ ref: ref.full, roots: [root], platform, blobs, fetcher, signal })
    return { ...image, digest: top.manifest.digest }
  }

  #top(ref: ImageReference, blobs: BlobStore, signal?: AbortSignal): Promise<ResolvedTop> {
    let p = this.#tops.get(ref.full)
    if (!p) {
      p = this.#resolveTop(ref, blobs, signal)
      this.#tops.set(ref.full, p)
      p.catch(() => this.#tops.delete(ref.full))
    }
    return p
  }

  async #resolveTop(ref: ImageReference, blobs: BlobStore, signal?: AbortSignal): Promise<ResolvedTop> {
    const endpoints = this.client.pullEndpoints(ref.domain)
    // A pinned manifest already in the store is content-addressed: no registry needs to be asked.
    if (ref.digest && (await blobs.has(ref.digest as Digest))) return { manifest: await stored(blobs, ref.digest as Digest), endpoints }
    const reference = ref.digest ?? ref.tag ?? 'latest'
    let lastError: unknown
    for (const [i, ep] of endpoints.entries()) {
      try {
        const manifest = await this.client.getManifest(ep, ref.path, reference, signal)
        if (ref.digest && manifest.digest !== ref.digest) throw mismatch(ep, ref.path, ref.digest, manifest.digest, 'manifest')
        if (!ref.digest) await saveRefRecord(blobs, { ref: ref.full, digest: manifest.digest, mediaType: manifest.mediaType })
        return { manifest, endpoints: [ep, ...endpoints.filter((_, j) => j !== i)] }
      } catch (e) {
        if (isImagesmithError(e) && e.code === ErrorCodes.ABORTED) throw e
        lastError = e
        // A mirror that fails (down, 404, refusing) falls back to the next and then the registry.
        if (!ep.mirror) break
      }
    }
    // No registry in reach: what an earlier pull into this store resolved the tag to, as docker uses its local image.
    if (!ref.digest && isImagesmithError(lastError) && lastError.code === ErrorCodes.REGISTRY_UNREACHABLE) {
      const rec = await loadRefRecord(blobs, ref.full)
      if (rec) return { manifest: await stored(blobs, rec.digest), endpoints, offline: true }
    }
    throw withReference(lastError, ref)
  }

  async #fetch(endpoints: readonly Endpoint[], ref: ImageReference, desc: Descriptor, blobs: BlobStore, signal?: AbortSignal): Promise<void> {
    if (await blobs.has(desc.digest)) return
    let lastError: unknown
    for (const ep of endpoints) {
      try {
        if (INDEX_TYPES.has(desc.mediaType) || /manifest/.test(desc.mediaType)) {
          // Manifests are served from /manifests/, not /blobs/ (not every registry does both).
          const m = await this.client.getManifest(ep, ref.path, desc.digest, signal)
          if (m.digest !== desc.digest) throw mismatch(ep, ref.path, desc.digest, m.digest, 'manifest')
          await blobs.putBytes(m.bytes)
        } else {
          await this.client.fetchBlob(ep, ref.path, desc, blobs, signal)
        }
        return
      } catch (e) {
        if (isImagesmithError(e) && e.code === ErrorCodes.ABORTED) throw e
        lastError = e
      }
    }
    throw withReference(lastError, ref)
  }
}

/**
 * A full disk while the store was written (a blob, a manifest, a tag record) is NO_SPACE naming the
 * store, as a build reports it; the writers already removed their temp files.
 */
function noSpace(e: unknown, store: string): ImagesmithError | undefined {
  const errno = (e as NodeJS.ErrnoException)?.code
  if (isImagesmithError(e) || (errno !== 'ENOSPC' && errno !== 'EDQUOT')) return undefined
  const path = (e as NodeJS.ErrnoException).path ?? store
  return new ImagesmithError(ErrorCodes.NO_SPACE, `no space left on device writing ${path}`, { path, errno }, { cause: e })
}

function withReference(e: unknown, ref: ImageReference): unknown {
  if (!isImagesmithError(e) || 'image' in e.details) return e
  return new ImagesmithError(e.code, `${ref.full}: ${e.message}`, { image: ref.full, ...e.details }, { cause: e.cause ?? e })
}
