import { remoteFetchers } from '../cache-share/remote-fetch.js'
import { ErrorCodes, isImagesmithError } from '../errors.js'
import { openImageSource, type ImageSource } from '../insight/image-source.js'
import { parsePlatform } from '../oci/platform.js'
import { resolveRegistryOptions } from '../pipeline/resolve-options.js'
import { parseReference } from '../reference/reference.js'
import { RegistryClient } from '../registry/client.js'
import { PullSession } from '../registry/pull.js'
import { Store } from '../store/store.js'
import { one, type ParsedArgs } from './args.js'
import { registryFlags } from './registry-flags.js'

/**
 * An image by path, local name, or registry reference. A reference is only tried when it names
 * its registry (`host:5000/app:1`, `registry.example/app`): a mistyped file name never turns into
 * a Docker Hub request. It is pulled into the store as `imagesmith pull` would (this host's
 * platform, or `--platform`), which fetches nothing the store already holds.
 */
export async function openAnyImage(text: string, args: ParsedArgs, cacheDir: string): Promise<ImageSource> {
  let client: RegistryClient | undefined
  try {
    // A local image's layers an imported build cache answered for are fetched as they are read, as `imagesmith save` does.
    const src = await openImageSource(text, cacheDir, (store) => {
      client = new RegistryClient(resolveRegistryOptions(registryFlags(args)))
      store.blobs.remote.use(remoteFetchers(client, store.blobs))
    })
    return client === undefined ? src : { ...src, close: async () => (await src.close(), client!.close()) }
  } catch (e) {
    client?.close()
    if (!isImagesmithError(e) || e.code !== ErrorCodes.IMAGE_NOT_FOUND || !namesRegistry(text)) throw e
  }
  const ref = parseReference(text)
  const store = new Store(cacheDir)
  await store.init()
  const session = new PullSession(new RegistryClient(resolveRegistryOptions(registryFlags(args))))
  try {
    const pulled = await session.pull(ref, parsePlatform(one(args, '--platform')), store.blobs)
    return {
      images: [{ name: ref.full, manifestDigest: pulled.manifestDigest, manifest: pulled.manifest, config: pulled.config }],
      openBlob: (d) => store.blobs.open(d),
      close: async () => {},
    }
  } finally {
    session.client.close()
  }
}

function namesRegistry(text: string): boolean {
  const slash = text.indexOf('/')
  if (slash <= 0) return false
  const first = text.slice(0, slash)
  return first.includes('.') || first.includes(':') || first === 'localhost'
}
