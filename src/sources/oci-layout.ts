import { createReadStream, promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { Descriptor } from '../oci/types.js'
import type { Digest } from '../oci/media-types.js'
import { parseIndex, taggedRoots } from './index-roots.js'
import type { LocalImportRequest } from './local-import.js'
import { baseInvalid, resolveImage, type BlobFetcher, type ResolvedImage } from './resolve.js'

/** `oci:DIR[:TAG]`: an OCI image layout directory; blobs are copied in only as the resolver asks for them. */
export async function importOciLayout(req: LocalImportRequest): Promise<ResolvedImage> {
  const { ref, refText, blobs } = req
  let bytes: Buffer
  try {
    bytes = await fsp.readFile(join(ref.path, 'index.json'))
  } catch (e) {
    throw baseInvalid(refText, 'no readable index.json (not an OCI layout)', { path: ref.path }, e)
  }
  const fetcher: BlobFetcher = {
    async fetch(desc: Descriptor) {
      if (await blobs.has(desc.digest)) return
      const file = join(ref.path, 'blobs', 'sha256', desc.digest.slice('sha256:'.length))
      try {
        await fsp.access(file)
      } catch (e) {
        throw baseInvalid(refText, `blob ${desc.digest} is missing from the layout`, { digest: desc.digest, path: file }, e)
      }
      await blobs.putStream(createReadStream(file, { highWaterMark: 1 << 20 }), desc.digest)
    },
  }
  const roots = taggedRoots(parseIndex(bytes, refText), ref, refText, 'digest' in ref && ref.digest ? await blobDescriptor(ref.path, ref.digest as Digest) : undefined)
  return resolveImage({ ref: refText, roots, platform: req.platform, blobs, fetcher, signal: req.signal })
}

/** A blob of the layout named by digest alone: the resolver reads it and tells a manifest from an index by its shape. */
async function blobDescriptor(dir: string, digest: Digest): Promise<Descriptor | undefined> {
  try {
    const st = await fsp.stat(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)))
    return st.isFile() ? { mediaType: '', digest, size: st.size } : undefined
  } catch {
    return undefined
  }
}
