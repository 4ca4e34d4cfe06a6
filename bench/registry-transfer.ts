/**
 * One registry transfer by the library, in its own process (so peak RSS is its own), timed from
 * the first request to the last; prints `{ seconds, bytes }` as JSON on stdout.
 *
 *   registry-transfer.ts push <store> <manifest-digest> <host/repo:tag>
 *   registry-transfer.ts pull <store> <host/repo:tag>      (pull into the store, then unpack every layer)
 */
import type { Digest } from '../src/oci/media-types.js'
import type { FinalImage, ImageConfig, Manifest } from '../src/oci/types.js'
import { hostPlatform } from '../src/oci/platform.js'
import { resolveRegistryOptions } from '../src/pipeline/resolve-options.js'
import { parseReference } from '../src/reference/reference.js'
import { RegistryClient } from '../src/registry/client.js'
import { PullSession } from '../src/registry/pull.js'
import { pushImage } from '../src/registry/push.js'
import { pushSender } from '../src/registry/push-sender.js'
import { ensureSnapshots } from '../src/snapshot/unpack.js'
import { Store } from '../src/store/store.js'

const [mode, storeDir, ...rest] = process.argv.slice(2)
const store = new Store(storeDir!)
await store.init()
const client = new RegistryClient(resolveRegistryOptions({ configDir: `${storeDir}/no-docker-config` }, {}))

if (mode === 'push') {
  const [digest, tag] = rest as [Digest, string]
  const manifest = await store.blobs.readJson<Manifest>(digest)
  const config = await store.blobs.readJson<ImageConfig>(manifest.config.digest)
  const image: FinalImage = {
    kind: 'image',
    manifest,
    manifestDigest: digest,
    manifestSize: await store.blobs.size(digest),
    config,
    configDigest: manifest.config.digest,
    layers: manifest.layers.map((l, i) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: config.rootfs.diff_ids[i]! })),
  }
  const t0 = performance.now()
  const r = await pushImage(image, { blobs: store.blobs, tags: [tag], senderFor: (reg) => pushSender(client, reg) })
  const seconds = (performance.now() - t0) / 1000
  process.stdout.write(JSON.stringify({ seconds, bytes: r.bytes, digest: r.digest }))
} else if (mode === 'pull') {
  const [ref] = rest as [string]
  const session = new PullSession(client)
  const t0 = performance.now()
  const image = await session.pull(parseReference(ref), hostPlatform(), store.blobs)
  const pulled = (performance.now() - t0) / 1000
  await ensureSnapshots(store, image.layers)
  const seconds = (performance.now() - t0) / 1000
  process.stdout.write(JSON.stringify({ seconds, pullSeconds: pulled, bytes: image.layers.reduce((n, l) => n + l.size, 0), digest: image.digest }))
} else {
  throw new Error(`unknown mode ${mode}`)
}
client.close()
