import PQueue from 'p-queue'
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import type { Artifact, FinalIndex } from '../artifacts/artifact.js'
import { MediaType, type Digest } from '../oci/media-types.js'
import type { FinalImage, Manifest } from '../oci/types.js'
import { parseImageName, parseReference, type TaggedReference } from '../reference/reference.js'
import type { BlobStore } from '../store/blob-store.js'
import { openSession, sessionOf, uploadBlob, uploadInvalid, type PushSender, type UploadPolicy, type UploadSession, type UploadTarget } from './upload.js'

/** A base image the build started from, as the pull side records it (`bases` of the build result). */
export interface PushBase {
  /** The reference as resolved: `127.0.0.1:5000/library/busybox:latest` */
  readonly ref: string
  /** The manifest (or index) digest pulled. */
  readonly digest: Digest
}

export interface PushOptions {
  readonly blobs: BlobStore
  /** The build's tags: each names a registry, a repository and a tag. */
  readonly tags: readonly string[]
  /** A sender per registry (`docker.io`, `127.0.0.1:5000`). */
  readonly senderFor: (registry: string) => PushSender
  /** Bases the image was built from: their repositories are where blobs are mounted from. */
  readonly bases?: readonly PushBase[]
  readonly upload?: Partial<Omit<UploadPolicy, 'onBytes'>>
  /** Blobs uploaded at once per repository. @default 3 */
  readonly concurrency?: number
  readonly signal?: AbortSignal
}

export interface PushResult {
  readonly digest: Digest
  /** Every tag pushed, in full form (`127.0.0.1:5000/team/app:1`). */
  readonly refs: readonly string[]
  readonly blobs: number
  readonly bytes: number
  readonly mounted: number
  readonly skipped: number
}

const DEFAULT_CHUNK = 16 << 20

/**
 * Pushes a built image to every tag's repository: for each blob a HEAD (present: skipped), else a
 * cross-repository mount from a base's repository on the same registry, else an upload; then the
 * manifest, byte for byte as stored, so the registry's digest is the built digest.
 */
export function pushImage(image: FinalImage, opts: PushOptions): Promise<PushResult> {
  return pushArtifact(image, opts)
}

/**
 * Pushes an image index (a multi-platform image) to every tag's repository: each image's blobs as
 * {@link pushImage} pushes them, then each image's manifest by its digest (the index names them so,
 * and a registry refuses an index whose manifests it does not have), then the index, byte for byte
 * as stored, under each tag.
 */
export function pushIndex(index: FinalIndex, opts: PushOptions): Promise<PushResult> {
  return pushArtifact(index, opts)
}

async function pushArtifact(artifact: Artifact, opts: PushOptions): Promise<PushResult> {
  if (opts.tags.length === 0) {
    throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, 'a registry output needs at least one tag (-t registry/repository:tag)', {})
  }
  const byRepo = new Map<string, TaggedReference[]>()
  for (const t of opts.tags) {
    const ref = parseImageName(t)
    const list = byRepo.get(ref.name) ?? []
    list.push(ref)
    byRepo.set(ref.name, list)
  }
  const images = artifact.kind === 'index' ? artifact.images.map((i) => i.image) : [artifact]
  const top: ManifestPut = { digest: artifact.manifestDigest, mediaType: artifact.manifest.mediaType ?? MediaType.OciIndex, bytes: await opts.blobs.readBytes(artifact.manifestDigest) }
  const children: ManifestPut[] = []
  if (artifact.kind === 'index') {
    for (const image of images) children.push({ digest: image.manifestDigest, mediaType: image.manifest.mediaType, bytes: await opts.blobs.readBytes(image.manifestDigest) })
    // Attestation manifests go after the images they name, as the index lists them.
    for (const a of artifact.attestations ?? []) children.push({ digest: a.manifestDigest, mediaType: a.manifest.mediaType, bytes: await opts.blobs.readBytes(a.manifestDigest) })
  }
  const attestationBlobs = artifact.kind === 'index'
    ? (artifact.attestations ?? []).flatMap((a) => [a.manifest.config, ...a.manifest.layers].map((d) => ({ digest: d.digest, size: d.size })))
    : []
  const stats = { blobs: 0, bytes: 0, mounted: 0, skipped: 0 }
  const policy: UploadPolicy = {
    mode: opts.upload?.mode ?? 'auto',
    chunkSize: opts.upload?.chunkSize ?? DEFAULT_CHUNK,
    onBytes: (n) => (stats.bytes += n),
  }
  const refs: string[] = []
  // A repository this push completed holds every blob: later repositories on that registry mount from it.
  const complete = new Map<string, string>()
  for (const refsOfRepo of byRepo.values()) {
    const first = refsOfRepo[0]!
    const sender = opts.senderFor(first.domain)
    const done = complete.get(first.domain)
    const sources = done !== undefined ? { byDigest: new Map<string, string>(), any: done } : await mountSources(opts, first)
    await pushBlobs(images, first, sender, sources, policy, stats, opts, attestationBlobs)
    for (const child of children) {
      throwIfAborted(opts.signal)
      await putManifest(sender, first, child.digest, `${first.name}@${child.digest}`, child, opts.signal)
    }
    complete.set(first.domain, first.path)
    for (const ref of refsOfRepo) {
      throwIfAborted(opts.signal)
      await putManifest(sender, ref, ref.tag, ref.full, top, opts.signal)
      refs.push(ref.full)
    }
  }
  return { digest: artifact.manifestDigest, refs, ...stats }
}

/** A manifest (an image's or an index) as it is PUT: its stored bytes and what they are. */
interface ManifestPut {
  readonly digest: Digest
  readonly mediaType: string
  readonly bytes: Buffer
}

/** digest → repositories on the target's registry that hold it (from the bases' manifests), plus every base repository as a fallback. */
interface MountSources {
  readonly byDigest: ReadonlyMap<string, string>
  readonly any: string | undefined
}

async function mountSources(opts: PushOptions, target: TaggedReference): Promise<MountSources> {
  const byDigest = new Map<string, string>()
  let any: string | undefined
  for (const base of opts.bases ?? []) {
    let ref
    try {
      ref = parseReference(base.ref)
    } catch {
      continue
    }
    if (ref.domain !== target.domain || ref.path === target.path) continue
    any ??= ref.path
    const doc = await opts.blobs.readJson<Partial<Manifest>>(base.digest).catch(() => undefined)
    for (const l of doc?.layers ?? []) if (!byDigest.has(l.digest)) byDigest.set(l.digest, ref.path)
  }
  return { byDigest, any }
}

async function pushBlobs(
  images: readonly FinalImage[],
  target: TaggedReference,
  sender: PushSender,
  sources: MountSources,
  policy: UploadPolicy,
  stats: { blobs: number; mounted: number; skipped: number },
  opts: PushOptions,
  extra: readonly { digest: Digest; size: number }[] = [],
): Promise<void> {
  const repo = target.path
  const pushScope = `repository:${repo}:pull,push`
  const blobs: { digest: Digest; size: number }[] = [...images.flatMap((image) => [...image.layers.map((l) => ({ digest: l.digest, size: l.size })), { digest: image.configDigest, size: -1 }]), ...extra]
  const seen = new Set<string>()
  const queue = new PQueue({ concurrency: opts.concurrency ?? 3 })
  // The first failure stops the rest: queued blobs are not started, running ones are aborted, and
  // the push fails only once they have settled (no fetch or upload outlives it).
  const stop = new AbortController()
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal
  let failure: { readonly error: unknown } | undefined
  const tasks = blobs
    .filter((b) => !seen.has(b.digest) && seen.add(b.digest))
    .map((b) =>
      queue.add(async () => {
        throwIfAborted(signal)
        const size = b.size >= 0 ? b.size : await opts.blobs.size(b.digest)
        const t: UploadTarget = { repository: repo, digest: b.digest, size, path: opts.blobs.blobPath(b.digest), scopes: [pushScope], signal }
        const head = await sender.send({ method: 'HEAD', url: `/v2/${repo}/blobs/${b.digest}`, scopes: [pushScope], signal })
        await head.text(0)
        if (head.status === 200) {
          stats.skipped++
          return
        }
        if (head.status !== 404) throw unexpected(sender, head.status, 'HEAD', t, '')
        const from = sources.byDigest.get(b.digest) ?? sources.any
        let session: UploadSession
        if (from) {
          const scopes = [pushScope, `repository:${from}:pull`]
          const url = `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(b.digest)}&from=${encodeURIComponent(from)}`
          const res = await sender.send({ method: 'POST', url, scopes, headers: { 'content-length': '0' }, signal })
          const body = await res.text(64 << 10)
          if (res.status === 201) {
            stats.mounted++
            return
          }
          // 202: the registry could not mount (not there, or no pull access) and opened a session instead.
          if (res.status !== 202) throw unexpected(sender, res.status, 'POST (mount)', t, body)
          session = sessionOf(res, t)
        } else {
          session = await openSession(sender, t)
        }
        // Only now are the bytes needed: a layer still remote (an imported cache's) is fetched.
        await opts.blobs.ensure(b.digest, signal)
        await uploadBlob(sender, t, session, policy)
        stats.blobs++
      }).catch((error: unknown) => {
        if (failure) return
        failure = { error }
        stop.abort(error)
      }),
    )
  await Promise.all(tasks)
  if (failure) throw failure.error
}

/** PUTs a manifest under `reference` (a tag, or the manifest's digest); `name` is what errors call it. */
async function putManifest(sender: PushSender, ref: TaggedReference, reference: string, name: string, put: ManifestPut, signal?: AbortSignal): Promise<void> {
  const res = await sender.send({
    method: 'PUT',
    url: `/v2/${ref.path}/manifests/${reference}`,
    scopes: [`repository:${ref.path}:pull,push`],
    headers: { 'content-type': put.mediaType, 'content-length': String(put.bytes.length) },
    body: put.bytes,
    signal,
  })
  const body = await res.text(64 << 10)
  if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
    throw new ImagesmithError(
      res.status === 401 || res.status === 403 ? ErrorCodes.UNAUTHORIZED : ErrorCodes.MANIFEST_INVALID,
      `the registry refused the manifest for ${name} (${res.status}): ${sender.redact(body.slice(0, 300))}`,
      { reference: name, status: res.status },
    )
  }
  const echoed = res.headers['docker-content-digest']
  const digest = Array.isArray(echoed) ? echoed[0] : echoed
  if (digest && digest !== put.digest) {
    throw new ImagesmithError(ErrorCodes.MANIFEST_INVALID, `the registry stored ${name} as ${digest}, not the built ${put.digest}`, { reference: name, digest, expected: put.digest })
  }
}

function unexpected(sender: PushSender, status: number, what: string, t: UploadTarget, body: string): ImagesmithError {
  if (status === 401 || status === 403) {
    return new ImagesmithError(ErrorCodes.UNAUTHORIZED, `the registry refused ${what} for ${t.repository} (${status}): push access denied`, { repository: t.repository, status })
  }
  return uploadInvalid(t, `unexpected answer to ${what} (${status})${body ? `: ${sender.redact(body.slice(0, 300))}` : ''}`, status)
}
