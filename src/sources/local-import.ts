import { createReadStream, promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { Parser, type ReadEntry } from 'tar'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { BlobStore } from '../store/blob-store.js'
import { MediaType, isDigest, type Digest } from '../oci/media-types.js'
import type { Descriptor, ImageConfig, ImageIndex, LayerRef, Manifest, Platform } from '../oci/types.js'

/** A base image whose config and layer blobs are all in the store. */
export interface ImportedImage {
  readonly manifestDigest: Digest
  readonly config: ImageConfig
  readonly layers: readonly LayerRef[]
}

export type LocalRef =
  | { readonly transport: 'oci'; readonly path: string; readonly tag?: string }
  | { readonly transport: 'oci-archive'; readonly path: string; readonly tag?: string }
  | { readonly transport: 'docker-archive'; readonly path: string; readonly tag?: string }

const TRANSPORTS = ['oci', 'oci-archive', 'docker-archive'] as const

/** Parses `oci:DIR[:TAG]`, `oci-archive:PATH[:TAG]`, `docker-archive:PATH[:NAME:TAG]` (skopeo's syntax). */
export function parseLocalRef(ref: string): LocalRef | undefined {
  const i = ref.indexOf(':')
  if (i < 0) return undefined
  const transport = ref.slice(0, i) as LocalRef['transport']
  if (!TRANSPORTS.includes(transport)) return undefined
  const rest = ref.slice(i + 1)
  if (!rest) throw invalidRef(ref, 'path is empty')
  // A ':' after the last '/' starts the tag, as in skopeo: `oci:dir:tag`.
  const slash = rest.lastIndexOf('/')
  const colon = transport === 'docker-archive' ? rest.indexOf(':', slash + 1) : rest.lastIndexOf(':')
  if (colon > slash && colon > 0) return { transport, path: resolve(rest.slice(0, colon)), tag: rest.slice(colon + 1) }
  return { transport, path: resolve(rest) }
}

function invalidRef(ref: string, why: string): ImagesmithError {
  return new ImagesmithError(ErrorCodes.INVALID_REFERENCE, `invalid image reference ${JSON.stringify(ref)}: ${why}`, { reference: ref })
}

function baseInvalid(ref: string, why: string, cause?: unknown): ImagesmithError {
  return new ImagesmithError(ErrorCodes.BASE_IMAGE_INVALID, `base image ${ref}: ${why}`, { reference: ref }, { cause })
}

/** Copies a local base image's blobs into the store (verifying each against its digest) and returns it. */
export async function importLocalImage(ref: LocalRef, refText: string, blobs: BlobStore, platform: Platform, signal?: AbortSignal): Promise<ImportedImage> {
  try {
    await fsp.stat(ref.path)
  } catch (e) {
    throw new ImagesmithError(ErrorCodes.UNKNOWN_FROM, `base image not found: ${ref.path}`, { reference: refText, path: ref.path }, { cause: e })
  }
  if (ref.transport === 'oci') return importLayoutDir(ref, refText, blobs, platform)
  return importArchive(ref, refText, blobs, platform, signal)
}

async function importLayoutDir(ref: LocalRef, refText: string, blobs: BlobStore, platform: Platform): Promise<ImportedImage> {
  const readBlob = async (d: Digest) => {
    if (!(await blobs.has(d))) await blobs.putStream(createReadStream(join(ref.path, 'blobs', 'sha256', d.slice(7))), d)
  }
  let index: ImageIndex
  try {
    index = JSON.parse(await fsp.readFile(join(ref.path, 'index.json'), 'utf8')) as ImageIndex
  } catch (e) {
    throw baseInvalid(refText, 'no readable index.json (not an OCI layout)', e)
  }
  return resolveImage(index, ref, refText, blobs, platform, readBlob)
}

/** Streams an archive once: every blob goes into the store; the small JSON files are kept to resolve the image. */
async function importArchive(ref: LocalRef, refText: string, blobs: BlobStore, platform: Platform, signal?: AbortSignal): Promise<ImportedImage> {
  const files = new Map<string, Digest>()
  const small = new Map<string, Buffer>()
  const pending: Promise<unknown>[] = []
  await new Promise<void>((res, rej) => {
    const parser = new Parser({ strict: true })
    const input = createReadStream(ref.path)
    const fail = (e: unknown) => { input.destroy(); rej(baseInvalid(refText, `cannot read archive: ${(e as Error).message}`, e)) }
    signal?.addEventListener('abort', () => fail(signal.reason), { once: true })
    parser.on('entry', (entry: ReadEntry) => {
      const name = entry.path.replace(/^\.\//, '')
      if (entry.type !== 'File' && entry.type !== 'OldFile') return entry.resume()
      if (name.endsWith('.json') || name === 'oci-layout' || name === 'repositories') {
        const chunks: Buffer[] = []
        entry.on('data', (c: Buffer) => chunks.push(c))
        entry.on('end', () => small.set(name, Buffer.concat(chunks)))
        return
      }
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name)
      const expected = m ? (`sha256:${m[1]}` as Digest) : undefined
      // Entries must be consumed in order, so each blob is written while the parser waits on it.
      entry.pause()
      const p = (async () => {
        if (expected && (await blobs.has(expected))) {
          entry.resume()
          files.set(name, expected)
          return
        }
        const { digest } = await blobs.putStream(entry as unknown as NodeJS.ReadableStream as never, expected)
        files.set(name, digest)
      })()
      p.catch(fail)
      pending.push(p)
    })
    parser.on('error', fail)
    parser.on('end', () => Promise.all(pending).then(() => res(), fail))
    input.on('error', fail)
    input.pipe(parser)
  })

  const readBlob = async (d: Digest) => {
    if (!(await blobs.has(d))) throw baseInvalid(refText, `blob ${d} is missing from the archive`)
  }
  const indexBuf = small.get('index.json')
  if (ref.transport === 'oci-archive' || (indexBuf && !small.has('manifest.json'))) {
    if (!indexBuf) throw baseInvalid(refText, 'no index.json in the archive (not an OCI archive)')
    return resolveImage(JSON.parse(indexBuf.toString('utf8')) as ImageIndex, ref, refText, blobs, platform, readBlob)
  }
  return resolveDockerArchive(small, files, ref, refText, blobs)
}

interface DockerManifestEntry { Config: string; RepoTags?: string[] | null; Layers: string[] }

async function resolveDockerArchive(small: Map<string, Buffer>, files: Map<string, Digest>, ref: LocalRef, refText: string, blobs: BlobStore): Promise<ImportedImage> {
  const mj = small.get('manifest.json')
  if (!mj) throw baseInvalid(refText, 'no manifest.json in the archive (not a docker archive)')
  const entries = JSON.parse(mj.toString('utf8')) as DockerManifestEntry[]
  const entry = ref.tag ? entries.find((e) => (e.RepoTags ?? []).some((t) => t === ref.tag || t.endsWith(`/${ref.tag}`))) : entries[0]
  if (!entry) throw new ImagesmithError(ErrorCodes.UNKNOWN_FROM, `no image ${ref.tag ?? ''} in ${ref.path}`, { reference: refText })
  const configBuf = small.get(entry.Config)
  const configDigest = files.get(entry.Config)
  let config: ImageConfig
  if (configBuf) {
    config = JSON.parse(configBuf.toString('utf8')) as ImageConfig
    await blobs.putBytes(configBuf)
  } else if (configDigest) {
    config = await blobs.readJson<ImageConfig>(configDigest)
  } else throw baseInvalid(refText, `config ${entry.Config} is missing from the archive`)
  const diffIds = config.rootfs?.diff_ids ?? []
  if (diffIds.length !== entry.Layers.length) throw baseInvalid(refText, 'layer count does not match the config')
  const layers: LayerRef[] = []
  for (const [i, path] of entry.Layers.entries()) {
    const digest = files.get(path)
    if (!digest) throw baseInvalid(refText, `layer ${path} is missing from the archive`)
    const head = await readHead(blobs.blobPath(digest))
    const gz = head[0] === 0x1f && head[1] === 0x8b
    if (!gz && digest !== diffIds[i]) throw baseInvalid(refText, `layer ${path} does not match diff_id ${diffIds[i]}`)
    layers.push({ digest, diffId: diffIds[i]!, size: await blobs.size(digest), mediaType: gz ? MediaType.OciLayerGzip : MediaType.OciLayer })
  }
  const manifest = await writeManifest(blobs, config, layers)
  return { manifestDigest: manifest, config, layers }
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await fsp.open(path)
  try {
    const buf = Buffer.alloc(4)
    await fh.read(buf, 0, 4, 0)
    return buf
  } finally {
    await fh.close()
  }
}

async function writeManifest(blobs: BlobStore, config: ImageConfig, layers: readonly LayerRef[]): Promise<Digest> {
  const cfg = await blobs.putBytes(JSON.stringify(config))
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  }
  return (await blobs.putBytes(JSON.stringify(manifest))).digest
}

const INDEX_TYPES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList])

function matchesTag(d: Descriptor, tag: string): boolean {
  const a = d.annotations ?? {}
  const refName = a['org.opencontainers.image.ref.name']
  const full = a['io.containerd.image.name']
  return refName === tag || full === tag || (full !== undefined && full.endsWith(`:${tag}`))
}

function matchesPlatform(d: Descriptor, p: Platform): boolean {
  if (!d.platform) return true
  return d.platform.os === p.os && d.platform.architecture === p.architecture && (!p.variant || d.platform.variant === p.variant)
}

async function resolveImage(
  index: ImageIndex,
  ref: LocalRef,
  refText: string,
  blobs: BlobStore,
  platform: Platform,
  readBlob: (d: Digest) => Promise<void>,
): Promise<ImportedImage> {
  let candidates = index.manifests ?? []
  if (ref.tag) candidates = candidates.filter((d) => matchesTag(d, ref.tag!))
  if (candidates.length === 0) {
    throw new ImagesmithError(ErrorCodes.UNKNOWN_FROM, `no image${ref.tag ? ` tagged ${ref.tag}` : ''} in ${ref.path}`, { reference: refText })
  }
  let desc = candidates.find((d) => matchesPlatform(d, platform)) ?? candidates[0]!
  for (let depth = 0; INDEX_TYPES.has(desc.mediaType); depth++) {
    if (depth > 4 || !isDigest(desc.digest)) throw baseInvalid(refText, 'nested index too deep')
    await readBlob(desc.digest)
    const nested = await blobs.readJson<ImageIndex>(desc.digest)
    const pick = nested.manifests.find((d) => matchesPlatform(d, platform))
    if (!pick) {
      throw new ImagesmithError(ErrorCodes.UNSUPPORTED_PLATFORM, `${refText} has no image for ${platform.os}/${platform.architecture}`, { reference: refText, platform })
    }
    desc = pick
  }
  await readBlob(desc.digest)
  const manifest = await blobs.readJson<Manifest>(desc.digest)
  await readBlob(manifest.config.digest)
  const config = await blobs.readJson<ImageConfig>(manifest.config.digest)
  const diffIds = config.rootfs?.diff_ids ?? []
  if (diffIds.length !== manifest.layers.length) throw baseInvalid(refText, 'layer count does not match the config')
  const layers: LayerRef[] = []
  for (const [i, l] of manifest.layers.entries()) {
    await readBlob(l.digest)
    layers.push({ digest: l.digest, diffId: diffIds[i]!, size: l.size, mediaType: l.mediaType })
  }
  return { manifestDigest: desc.digest, config, layers }
}
