import { ociArchiveExporter } from '../exporters/oci-archive.js'
import { remoteFetchers } from '../cache-share/remote-fetch.js'
import { resolveRegistryOptions } from '../pipeline/resolve-options.js'
import { RegistryClient } from '../registry/client.js'
import type { Digest } from '../oci/media-types.js'
import { defaultCacheDir } from '../store/default-dir.js'
import { parseImageName } from '../reference/reference.js'
import { formatPlatform } from '../oci/platform.js'
import { nameImage, requireLocalImage, storedArtifact } from '../store/local-images.js'
import { Store } from '../store/store.js'
import { UsageError, assertKnownFlags, one, type ParsedArgs } from './args.js'
import { formatBytes, formatAge } from './format.js'
import { artifactUnpackedSize } from './unpacked-size.js'

type Io = { out: (s: string) => void; err: (s: string) => void }

export const IMAGES_HELP = `  imagesmith images [--format json] [--cache-dir DIR]        local images: what builds tagged (-t) and imagesmith tag named
  imagesmith tag SRC DST [--cache-dir DIR]                   name a local image (SRC: name or digest prefix) as DST
  imagesmith rmi REF... [--cache-dir DIR]                    drop local names (the blobs go at the next cache prune)
  imagesmith save REF -o x.tar [--cache-dir DIR]             write a local image as an OCI tarball (also docker load-able)
  A FROM naming a local image uses it before any registry is asked (Docker's precedence); build --pull asks the registry;
  from('local:app:1') uses the local image only.`

async function openStore(args: ParsedArgs): Promise<Store> {
  const store = new Store(one(args, '--cache-dir') ?? defaultCacheDir())
  await store.init()
  return store
}

/** `imagesmith images`: as `docker images`, newest first. */
export async function imagesCommand(args: ParsedArgs, io: Io): Promise<number> {
  assertKnownFlags(args, ['--format', '--cache-dir', '--quiet'])
  const format = one(args, '--format')
  if (format !== undefined && format !== 'json' && format !== 'table') throw new UsageError('--format must be json or table')
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`)
  const store = await openStore(args)
  const records = await store.images.list()
  // SIZE is what the image takes unpacked, as docker and podman show it (the record's `size` is what it takes compressed);
  // an index (a multi-platform image) is one row, its size every platform's unique layers unpacked.
  const unpacked = new Map<string, number>()
  const platforms = new Map<string, string[]>()
  if (!args.flags.has('--quiet')) {
    for (const r of records) {
      if (unpacked.has(r.digest)) continue
      const artifact = await storedArtifact(store, r.digest as Digest, r.name).catch(() => undefined)
      unpacked.set(r.digest, artifact ? await artifactUnpackedSize(store, artifact) : r.size)
      if (artifact?.kind === 'index') platforms.set(r.digest, artifact.images.map((i) => formatPlatform(i.platform)))
    }
  }
  if (format === 'json') {
    const rows = records.map((r) => ({ repository: r.repository, tag: r.tag, digest: r.digest, created: r.created, size: unpacked.get(r.digest) ?? r.size, compressedSize: r.size, name: r.name, ...(platforms.has(r.digest) ? { platforms: platforms.get(r.digest) } : {}) }))
    io.out(`${JSON.stringify(rows, null, 2)}\n`)
    return 0
  }
  if (args.flags.has('--quiet')) {
    for (const d of new Set(records.map((r) => r.digest))) io.out(`${d}\n`)
    return 0
  }
  const rows = [['REPOSITORY', 'TAG', 'DIGEST', 'CREATED', 'SIZE'], ...records.map((r) => [r.repository, r.tag, r.digest.slice(0, 19), formatAge(r.created), formatBytes(unpacked.get(r.digest) ?? r.size)])]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  for (const row of rows) io.out(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')}\n`)
  return 0
}

/** `imagesmith tag SRC DST` */
export async function tagCommand(args: ParsedArgs, io: Io): Promise<number> {
  assertKnownFlags(args, ['--cache-dir'])
  const [src, dst, extra] = args.positionals
  if (!src || !dst || extra !== undefined) throw new UsageError('tag needs SRC and DST (e.g. imagesmith tag app:1 app:latest)')
  try {
    parseImageName(dst)
  } catch (e) {
    throw new UsageError(`tag ${dst}: ${(e as Error).message}`)
  }
  const store = await openStore(args)
  const record = await requireLocalImage(store, src)
  // An index is named whole: every platform stays under the new name.
  const artifact = await storedArtifact(store, record.digest as Digest, src)
  await nameImage(store, dst, artifact, new Date(record.created))
  void io
  return 0
}

/** `imagesmith rmi REF...`: drops names only; a prune reclaims what no name and no cache entry holds. */
export async function rmiCommand(args: ParsedArgs, io: Io): Promise<number> {
  assertKnownFlags(args, ['--cache-dir'])
  if (args.positionals.length === 0) throw new UsageError('rmi needs at least one image name')
  const store = await openStore(args)
  for (const text of args.positionals) {
    const record = await requireLocalImage(store, text)
    // A digest names every tag of that image, as `docker rmi <id>` untags them all.
    const names = /^(sha256:)?[0-9a-f]{6,64}$/.test(text) ? (await store.images.list()).filter((r) => r.digest === record.digest) : [record]
    for (const r of names) {
      await store.images.remove(r.name)
      io.out(`Untagged: ${r.repository}:${r.tag}\n`)
    }
  }
  return 0
}

/** `imagesmith save REF -o x.tar`: the same tarball as a build's `-o type=oci,dest=x.tar`. */
export async function saveCommand(args: ParsedArgs, io: Io, signal?: AbortSignal): Promise<number> {
  assertKnownFlags(args, ['--output', '--cache-dir'])
  const [text, extra] = args.positionals
  if (!text || extra !== undefined) throw new UsageError('save needs one image name')
  const dest = one(args, '--output')
  if (!dest) throw new UsageError('save needs -o PATH')
  const store = await openStore(args)
  const record = await requireLocalImage(store, text)
  // An index is saved whole, every platform in the tarball.
  const artifact = await storedArtifact(store, record.digest as Digest, text)
  const tag = `${record.repository}:${record.tag}`
  // Layers an imported build cache answered for may still be remote: fetched (verified) as the
  // archive needs them, with the registry credentials of the Docker config.
  store.blobs.remote.use(remoteFetchers(new RegistryClient(resolveRegistryOptions()), store.blobs))
  await ociArchiveExporter.export(artifact, { dest }, { blobs: store.blobs, tags: [tag], epoch: 0, ...(signal ? { signal } : {}) })
  io.out(`${artifact.manifestDigest}\n`)
  return 0
}
