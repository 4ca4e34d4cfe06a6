import { parseReference } from '../reference/reference.js'
import { RegistryClient } from '../registry/client.js'
import { PullSession } from '../registry/pull.js'
import { parsePlatform } from '../oci/platform.js'
import { resolveRegistryOptions } from '../pipeline/resolve-options.js'
import { defaultCacheDir } from '../store/default-dir.js'
import { Store } from '../store/store.js'
import { UsageError, assertKnownFlags, one, type ParsedArgs } from './args.js'
import { REGISTRY_FLAGS, registryFlags } from './registry-flags.js'

export const PULL_HELP = '  imagesmith pull <REF> [--platform os/arch[/variant]] [--registry-mirror R=HOST]... [--insecure-registry HOST]... [--cache-dir DIR] [-q]'

/**
 * `imagesmith pull REF`: resolves the reference (mirrors first), brings the platform's manifest,
 * config and layers into the store, and prints the digest the reference resolved to (as
 * `docker pull` does), so a build that follows finds every blob already there.
 */
export async function pullCommand(args: ParsedArgs, io: { out: (s: string) => void; err: (s: string) => void }, signal?: AbortSignal): Promise<number> {
  assertKnownFlags(args, ['--platform', '--cache-dir', '--quiet', ...REGISTRY_FLAGS])
  const text = args.positionals[0]
  if (!text) throw new UsageError('pull needs an image reference (e.g. debian, busybox:1.36, host:5000/a/b@sha256:…)')
  if (args.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[1])}`)
  let ref: ReturnType<typeof parseReference>
  let platform: ReturnType<typeof parsePlatform>
  try {
    ref = parseReference(text)
    platform = parsePlatform(one(args, '--platform'))
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  const cacheDir = one(args, '--cache-dir')
  const store = new Store(cacheDir ?? defaultCacheDir())
  await store.init()
  const session = new PullSession(new RegistryClient(resolveRegistryOptions(registryFlags(args))))
  const started = Date.now()
  try {
    const image = await session.pull(ref, platform, store.blobs, signal)
    if (!args.flags.has('--quiet')) {
      const bytes = image.layers.reduce((n, l) => n + l.size, 0)
      io.err(`pulled ${ref.full} (${image.layers.length} layers, ${(bytes / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(2)}s\n`)
      if (image.manifestDigest !== image.digest) io.err(`platform manifest: ${image.manifestDigest}\n`)
    }
    io.out(`${image.digest}\n`)
    return 0
  } finally {
    session.client.close()
  }
}
