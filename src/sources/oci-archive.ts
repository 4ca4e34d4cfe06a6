import type { Descriptor } from '../oci/types.js'
import { parseIndex, taggedRoots } from './index-roots.js'
import type { LocalImportRequest } from './local-import.js'
import { baseInvalid, resolveImage, type BlobFetcher, type ResolvedImage } from './resolve.js'
import { withArchive } from './archive-open.js'
import type { TarArchive } from './tar-index.js'

const INDEX_MAX = 16 << 20

/** `oci-archive:PATH[:TAG]`: an OCI layout in a tar; only the blobs the chosen image uses are read. */
export function importOciArchive(req: LocalImportRequest): Promise<ResolvedImage> {
  return withArchive(req, (archive) => resolveOciArchive(archive, req))
}

export async function resolveOciArchive(archive: TarArchive, req: LocalImportRequest): Promise<ResolvedImage> {
  const { ref, refText, blobs } = req
  const indexMember = archive.member('index.json')
  if (!indexMember) throw baseInvalid(refText, 'no index.json in the archive (not an OCI archive)', { path: ref.path })
  const fetcher: BlobFetcher = {
    async fetch(desc: Descriptor) {
      if (await blobs.has(desc.digest)) return
      const m = archive.member(`blobs/sha256/${desc.digest.slice('sha256:'.length)}`)
      if (!m) throw baseInvalid(refText, `blob ${desc.digest} is missing from the archive`, { digest: desc.digest })
      await blobs.putStream(archive.open(m), desc.digest)
    },
  }
  const roots = taggedRoots(parseIndex(await archive.read(indexMember, INDEX_MAX), refText), ref, refText)
  return resolveImage({ ref: refText, roots, platform: req.platform, blobs, fetcher, signal: req.signal })
}
