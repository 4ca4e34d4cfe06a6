import { createReadStream, promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, ImagesmithError, isImagesmithError } from '../errors.js'
import type { RegistryClient } from '../registry/client.js'
import type { BlobStore } from '../store/blob-store.js'
import type { RemoteFetcher, RemoteSource } from '../store/remote-blobs.js'

/**
 * How a store fetches the blobs an imported cache answered for (store/remote-blobs.ts): from a
 * registry through `client` (its mirrors first, as for pulls; credentials only for the host they
 * are configured for), or from a cache directory. Each verifies the digest while the bytes stream
 * and stores nothing that does not match.
 */
export function remoteFetchers(client: RegistryClient, blobs: BlobStore): Record<RemoteSource['type'], RemoteFetcher> {
  return {
    registry: async (rec, signal) => {
      const src = rec.source as Extract<RemoteSource, { type: 'registry' }>
      const desc = { digest: rec.digest, size: rec.size, mediaType: rec.mediaType }
      let lastError: unknown
      for (const ep of client.pullEndpoints(src.registry)) {
        try {
          return await client.fetchBlob(ep, src.repository, desc, blobs, signal)
        } catch (e) {
          if (isImagesmithError(e) && (e.code === ErrorCodes.ABORTED || e.code === ErrorCodes.DIGEST_MISMATCH || e.code === ErrorCodes.BLOB_CORRUPT)) throw e
          lastError = e
          if (!ep.mirror) break
        }
      }
      throw lastError ?? new ImagesmithError(ErrorCodes.BLOB_NOT_FOUND, `blob ${rec.digest}: no endpoint for ${src.registry}`, { digest: rec.digest, source: src.ref })
    },
    local: async (rec) => {
      const src = rec.source as Extract<RemoteSource, { type: 'local' }>
      const path = join(src.dir, 'blobs', 'sha256', rec.digest.slice(7))
      const st = await fsp.stat(path).catch((e: unknown) => {
        throw new ImagesmithError(ErrorCodes.BLOB_NOT_FOUND, `blob ${rec.digest} is gone from cache ${src.ref} (${path})`, { digest: rec.digest, source: src.ref }, { cause: e })
      })
      // A file of another size cannot hash to the digest: refused before it is read.
      if (st.size !== rec.size) throw new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `${path} is ${st.size} bytes, not ${rec.size}`, { expected: rec.digest, actual: `size ${st.size}` })
      await blobs.putStream(createReadStream(path), rec.digest)
    },
  }
}
