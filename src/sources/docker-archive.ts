import { ErrorCodes, ImagesmithError, isImagesmithError } from '../errors.js'
import { MediaType, isDigest, type Digest } from '../oci/media-types.js'
import type { Descriptor, ImageConfig, LayerRef, Manifest } from '../oci/types.js'
import { parseReference } from '../reference/reference.js'
import { SNIFF_BYTES, sniff } from '../util/sniff.js'
import { withArchive } from './archive-open.js'
import type { LocalImportRequest } from './local-import.js'
import { resolveOciArchive } from './oci-archive.js'
import { baseInvalid, resolveImage, type ResolvedImage } from './resolve.js'
import type { TarArchive, TarMember } from './tar-index.js'

/** One image of `docker save`'s manifest.json. */
interface DockerManifestEntry {
  readonly Config: string
  readonly RepoTags?: readonly string[] | null
  readonly Layers: readonly string[]
}

const JSON_MAX = 16 << 20
const LAYER_TYPE: Readonly<Record<string, string>> = { tar: MediaType.OciLayer, unknown: MediaType.OciLayer, gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd }

/**
 * `docker-archive:PATH[:NAME:TAG|:@N]`, what `docker save` and `skopeo copy docker-archive:` write.
 * Only the chosen image's config and layers enter the store, plus the OCI manifest made for them:
 * the legacy per-layer `json`/`VERSION` files and other images' blobs are never read.
 */
export function importDockerArchive(req: LocalImportRequest): Promise<ResolvedImage> {
  return withArchive(req, async (archive) => {
    const mj = archive.member('manifest.json')
    if (!mj) {
      // Docker 25+ `docker save` is an OCI layout too; without manifest.json read it as one.
      if (archive.has('index.json')) return resolveOciArchive(archive, req)
      throw baseInvalid(req.refText, 'no manifest.json in the archive (not a docker archive)', { path: req.ref.path })
    }
    const entry = selectEntry(parseJson<DockerManifestEntry[]>(await archive.read(mj, JSON_MAX), req, 'manifest.json'), req)
    const manifest = await storeImage(archive, entry, req)
    const desc: Descriptor = { mediaType: MediaType.OciManifest, digest: manifest.digest, size: manifest.size }
    // Everything is in the store now; the resolver reads it back like any other source's.
    const fetcher = {
      async fetch(d: Descriptor) {
        if (!(await req.blobs.has(d.digest))) throw baseInvalid(req.refText, `blob ${d.digest} is missing`, { digest: d.digest })
      },
    }
    return resolveImage({ ref: req.refText, roots: [desc], platform: req.platform, blobs: req.blobs, fetcher, signal: req.signal })
  })
}

function parseJson<T>(bytes: Buffer, req: LocalImportRequest, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch (e) {
    throw baseInvalid(req.refText, `${what} is not valid JSON`, { file: what }, e)
  }
}

function fullName(name: string): string | undefined {
  try {
    return parseReference(name).full
  } catch {
    return undefined
  }
}

function selectEntry(entries: readonly DockerManifestEntry[], req: LocalImportRequest): DockerManifestEntry {
  if (!Array.isArray(entries) || entries.length === 0) throw baseInvalid(req.refText, 'manifest.json lists no images')
  const tag = req.ref.tag
  if (tag === undefined) return entries[0]!
  let entry: DockerManifestEntry | undefined
  const index = /^@(\d+)$/.exec(tag)
  if (index) entry = entries[Number(index[1])]
  else {
    const want = fullName(tag)
    // Same name once normalised; or, as before, a short name that ends the stored one (podman
    // stores `app:1` as `localhost/app:1`).
    entry = entries.find((e) => (e.RepoTags ?? ([] as string[])).some((t: string) => t === tag || (want !== undefined && fullName(t) === want) || t.endsWith(`/${tag}`)))
  }
  if (!entry) {
    const names = entries.flatMap((e) => e.RepoTags ?? [])
    throw new ImagesmithError(ErrorCodes.UNKNOWN_FROM, `no image ${tag} in ${req.ref.path}` + (names.length ? ` (it has ${names.join(', ')})` : ''), {
      reference: req.refText,
      path: req.ref.path,
      available: names,
    })
  }
  return entry
}

/**
 * The digest a content-addressed member's name states (`blobs/sha256/<hex>`, Docker 25+). Older
 * names (`<hex>.tar`, `<id>/layer.tar`) may name the diffID or an ID, so they state nothing.
 */
function namedDigest(path: string): Digest | undefined {
  const m = /^(?:\.\/)?blobs\/sha256\/([a-f0-9]{64})$/.exec(path)
  const d = m ? `sha256:${m[1]}` : undefined
  return isDigest(d) ? d : undefined
}

function member(archive: TarArchive, path: string, req: LocalImportRequest, what: string): TarMember {
  const m = typeof path === 'string' ? archive.member(path) : undefined
  if (!m) throw baseInvalid(req.refText, `${what} ${JSON.stringify(path)} is missing from the archive`, { file: path })
  return m
}

async function storeImage(archive: TarArchive, entry: DockerManifestEntry, req: LocalImportRequest): Promise<{ digest: Digest; size: number }> {
  const { blobs, refText } = req
  const configBytes = await archive.read(member(archive, entry.Config, req, 'config'), JSON_MAX)
  const config = parseJson<ImageConfig>(configBytes, req, entry.Config)
  const cfg = await blobs.putBytes(configBytes)
  const diffIds = config.rootfs?.diff_ids ?? []
  if (!Array.isArray(entry.Layers) || diffIds.length !== entry.Layers.length) {
    throw baseInvalid(refText, `manifest.json lists ${entry.Layers?.length ?? 0} layers and the config ${diffIds.length} diff_ids`)
  }
  const layers: LayerRef[] = []
  for (const [i, path] of entry.Layers.entries()) {
    const m = member(archive, path, req, 'layer')
    const head = await archive.read({ offset: m.offset, size: Math.min(SNIFF_BYTES, m.size) }, SNIFF_BYTES)
    const magic = sniff(head)
    const mediaType = LAYER_TYPE[magic]
    if (!mediaType) throw baseInvalid(refText, `layer ${path} is ${magic}-compressed, which OCI images cannot carry`, { file: path })
    // An uncompressed layer's digest is its diffID: stating it lets the store verify it, or skip it when present.
    const expected = mediaType === MediaType.OciLayer ? diffIds[i] : namedDigest(path)
    let digest = expected
    if (!expected || !(await blobs.has(expected))) {
      try {
        digest = (await blobs.putStream(archive.open(m), expected)).digest
      } catch (e) {
        if (isImagesmithError(e) && e.code === ErrorCodes.BLOB_CORRUPT) {
          throw baseInvalid(refText, `layer ${path} does not match ${expected}`, { file: path, expected }, e)
        }
        throw e
      }
    }
    layers.push({ digest: digest!, diffId: diffIds[i]!, size: m.size, mediaType })
  }
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  }
  return blobs.putBytes(JSON.stringify(manifest))
}
