import { spawn } from 'node:child_process'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import type { Artifact } from '../artifacts/artifact.js'
import type { Digest } from '../oci/media-types.js'
import type { Store } from '../store/store.js'
import { digestOf } from '../util/canonical-json.js'
import { sniffFile } from '../util/sniff.js'

/**
 * What an image takes unpacked, as `docker images` and `podman images` show it: the sum of its
 * layers' uncompressed sizes. An index (a multi-platform image) counts each layer its images share
 * once: the sum over every platform's unique layers, as the store holds them. Each layer is
 * decompressed once (streamed, counted) and its size kept in the store's cache index beside the
 * blob, so a prune drops it with the blob.
 */
export async function artifactUnpackedSize(store: Store, artifact: Artifact): Promise<number> {
  const manifests = artifact.kind === 'index' ? artifact.images.map((i) => i.image.manifest) : [artifact.manifest]
  const seen = new Set<string>()
  let total = 0
  for (const m of manifests) {
    for (const l of m.layers) {
      if (seen.has(l.digest)) continue
      seen.add(l.digest)
      total += await layerUnpackedSize(store, l.digest as Digest, l.size)
    }
  }
  return total
}

interface SizeEntry {
  /** Names the blob, so the entry goes with it (store/gc). */
  readonly layer: { readonly digest: Digest }
  readonly unpackedSize: number
}

async function layerUnpackedSize(store: Store, digest: Digest, compressed: number): Promise<number> {
  const key = digestOf({ unpackedSize: 1, layer: digest })
  const known = await store.cache.lookup<Partial<SizeEntry>>(key)
  if (typeof known?.unpackedSize === 'number') return known.unpackedSize
  if (!(await store.blobs.has(digest))) return compressed
  const codec = await sniffFile(store.blobs.blobPath(digest))
  let size = 0
  const count = new Writable({
    write(chunk: Buffer, _enc, done) {
      size += chunk.length
      done()
    },
  })
  if (codec === 'gzip') await pipeline(store.blobs.open(digest), createGunzip({ chunkSize: 256 << 10 }), count)
  else if (codec === 'zstd') {
    const zstd = spawn('zstd', ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] })
    const exited = new Promise<number>((res, rej) => {
      zstd.on('error', rej)
      zstd.on('close', (code) => res(code ?? 1))
    })
    await Promise.all([pipeline(store.blobs.open(digest), zstd.stdin), pipeline(zstd.stdout, count)])
    if ((await exited) !== 0) return compressed
  } else size = compressed // an uncompressed tar is its own size
  await store.cache.record(key, { layer: { digest }, unpackedSize: size } satisfies SizeEntry)
  return size
}
