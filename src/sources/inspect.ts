import { randomBytes } from 'node:crypto'
import { createReadStream, promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import { formatPlatform } from '../oci/platform.js'
import type { Descriptor, ImageConfig, ImageIndex, Manifest } from '../oci/types.js'
import { TarArchive, TarFormatError } from './tar-index.js'

export interface InspectedImage {
  readonly name?: string
  readonly manifestDigest: Digest
  readonly manifest: Manifest
  readonly config: ImageConfig
  /** The platform the index that lists this image names it for (an index's images only). */
  readonly platform?: string
  /** The index (a multi-platform image) this image was found in, as a name of it points at it. */
  readonly indexDigest?: Digest
}

/** Images one inspection lists at most, across every index it walks (a stranger's archive). */
const MAX_IMAGES = 256
/** Indexes nested deeper than this are not followed. */
const MAX_DEPTH = 4

/** JSON blobs above this size are not manifests or configs. */
const JSON_LIMIT = 4 << 20

/**
 * Reads the images of an OCI archive (tar) or OCI layout dir without touching the store: only
 * index.json, the manifests and the configs are read; layers are never opened.
 */
export async function inspectImages(path: string): Promise<InspectedImage[]> {
  const opened = await openImages(path)
  await opened.close()
  return opened.images
}

/** The images of an archive or layout, and their blobs by digest until `close()`. */
export interface OpenedImages {
  readonly images: InspectedImage[]
  /** A blob of the archive or layout (a layer, streamed), or undefined if it holds none of that digest. */
  openBlob(digest: Digest): Readable | undefined
  close(): Promise<void>
}

/** As {@link inspectImages}, keeping the archive open so that layers can be streamed from it. */
export async function openImages(path: string): Promise<OpenedImages> {
  let stat
  try {
    stat = await fsp.stat(path)
  } catch (e) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `no such file or directory: ${path}`, { path }, { cause: e })
  }
  let archive: TarArchive | undefined
  try {
    if (!stat.isDirectory()) archive = await TarArchive.open(path, join(tmpdir(), `imagesmith-inspect-${process.pid}-${randomBytes(6).toString('hex')}`))
    const read = async (name: string): Promise<Buffer | undefined> => {
      if (archive) {
        const m = archive.member(name)
        return m && m.size <= JSON_LIMIT ? archive.read(m, JSON_LIMIT) : undefined
      }
      const st = await fsp.stat(join(path, name)).catch(() => undefined)
      return st && st.size <= JSON_LIMIT ? fsp.readFile(join(path, name)) : undefined
    }
    const blob = (d: string) => read(`blobs/sha256/${String(d).slice(7)}`)
    const index = parseJson<ImageIndex>(await read('index.json'), path, 'index.json')
    const out: InspectedImage[] = []
    // An index (a multi-platform image) lists its images by platform: each is shown, under the index's name.
    const visit = async (d: Descriptor, name: string | undefined, depth: number, inIndex?: { digest: Digest; platform?: string }): Promise<void> => {
      if (out.length >= MAX_IMAGES) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}: more than ${MAX_IMAGES} images`, { path, limit: MAX_IMAGES })
      const doc = parseJson<Manifest & Partial<ImageIndex>>(await blob(d.digest), path, d.digest)
      if (Array.isArray(doc.manifests)) {
        if (depth >= MAX_DEPTH) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}: indexes nested more than ${MAX_DEPTH} deep`, { path, limit: MAX_DEPTH })
        for (const child of doc.manifests) {
          // Attestation manifests (platform unknown/unknown) are not images to run.
          if (child.platform?.os === 'unknown') continue
          await visit(child, name, depth + 1, { digest: d.digest, ...(child.platform ? { platform: formatPlatform(child.platform) } : {}) })
        }
        return
      }
      const config = parseJson<ImageConfig>(await blob(doc.config?.digest), path, doc.config?.digest ?? 'config')
      out.push({ name, manifestDigest: d.digest, manifest: doc, config, ...(inIndex ? { indexDigest: inIndex.digest, ...(inIndex.platform ? { platform: inIndex.platform } : {}) } : {}) })
    }
    for (const d of index.manifests ?? []) await visit(d, nameOf(d), 0)
    const opened = archive
    const openBlob = (d: Digest): Readable | undefined => {
      const name = `blobs/sha256/${String(d).slice(7)}`
      if (!/^sha256:[0-9a-f]{64}$/.test(d)) return undefined
      if (opened) {
        const m = opened.member(name)
        return m ? opened.open(m) : undefined
      }
      return createReadStream(join(path, name), { highWaterMark: 1 << 20 })
    }
    return { images: out, openBlob, close: async () => { await opened?.close() } }
  } catch (e) {
    await archive?.close()
    if (e instanceof TarFormatError) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path} is not a readable tar archive: ${e.message}`, { path }, { cause: e })
    throw e
  }
}

function nameOf(d: Descriptor): string | undefined {
  return d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name']
}

function parseJson<T>(buf: Buffer | undefined, path: string, what: string): T {
  if (!buf) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}: ${what} is missing (not an OCI archive or layout?)`, { path, missing: what })
  try {
    return JSON.parse(buf.toString('utf8')) as T
  } catch (e) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}: ${what} is not valid JSON`, { path, file: what }, { cause: e })
  }
}
