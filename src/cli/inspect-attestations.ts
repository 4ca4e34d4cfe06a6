import { randomBytes } from 'node:crypto'
import { existsSync, promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readAttestations, type BlobReader, type ReadAttestation } from '../attest/read.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { Descriptor, ImageIndex } from '../oci/types.js'
import { resolveRegistryOptions } from '../pipeline/resolve-options.js'
import { RegistryClient } from '../registry/client.js'
import { pullEndpoints } from '../registry/endpoints.js'
import { parseReference } from '../reference/reference.js'
import { TarArchive } from '../sources/tar-index.js'
import { findLocalImage } from '../store/local-images.js'
import { Store } from '../store/store.js'
import type { Io } from './io.js'
import { REGISTRY_FLAGS, registryFlags } from './registry-flags.js'
import { UsageError, type ParsedArgs } from './args.js'

/** The flags `inspect --attestations` adds (and the registry's, for a registry reference). */
export const ATTESTATION_FLAGS = ['--attestations', '--format', ...REGISTRY_FLAGS] as const

/** Index documents read at most (index.json of a layout can name several). */
const MAX_INDEXES = 64
const INDEX_LIMIT = 4 << 20

/**
 * `inspect IMAGE --attestations`: the SBOM and provenance statements of an archive, a layout, a
 * local image or a registry reference, per platform; `--format json` prints them with the
 * predicates unwrapped as `docker buildx imagetools inspect --format '{{json .SBOM}}'` does.
 */
export async function inspectAttestations(args: ParsedArgs, io: Pick<Io, 'out'>, target: string, cacheDir: string): Promise<number> {
  const format = args.flags.get('--format')?.[0]
  if (format !== undefined && format !== 'json' && format !== 'text') throw new UsageError('--format must be json or text')
  const found = await attestationsOf(args, target, cacheDir)
  if (format === 'json' || args.flags.has('--json')) {
    io.out(`${JSON.stringify(found.map((a) => ({
      subject: a.subject, ...(a.platform ? { platform: a.platform } : {}), manifest: a.manifestDigest, shape: a.shape,
      statements: a.statements.map((s) => ({ predicateType: s.predicateType, predicate: s.statement.predicate })),
    })), null, 2)}\n`)
    return 0
  }
  if (found.length === 0) io.out('no attestations\n')
  for (const a of found) {
    io.out(`Subject:      ${a.subject}${a.platform ? ` (${a.platform})` : ''}\n`)
    io.out(`Manifest:     ${a.manifestDigest} (${a.shape} shape)\n`)
    for (const s of a.statements) {
      const p = s.statement.predicate as { packages?: { name?: string; versionInfo?: string; externalRefs?: { referenceType?: string; referenceLocator?: string }[] }[]; materials?: { uri?: string; digest?: Record<string, string> }[]; buildType?: string } | undefined
      io.out(`Predicate:    ${s.predicateType}\n`)
      for (const pkg of p?.packages ?? []) {
        const purl = pkg.externalRefs?.find((r) => r.referenceType === 'purl')?.referenceLocator
        if (purl) io.out(`  package     ${purl}\n`)
      }
      if (p?.buildType) io.out(`  buildType   ${p.buildType}\n`)
      for (const m of p?.materials ?? []) io.out(`  material    ${m.uri ?? ''}${m.digest ? ` ${Object.entries(m.digest).map(([k, v]) => `${k}:${v}`).join(' ')}` : ''}\n`)
    }
    io.out('\n')
  }
  return 0
}

async function attestationsOf(args: ParsedArgs, target: string, cacheDir: string): Promise<ReadAttestation[]> {
  if (existsSync(target)) return fromDisk(target)
  const store = new Store(cacheDir)
  await store.init()
  const record = await findLocalImage(store, target)
  if (record) {
    const read: BlobReader = async (d, max) => {
      if (d.size > max) throw tooLarge(target, d)
      return store.blobs.readBytes(d.digest)
    }
    return fromIndexes([{ digest: record.digest as Digest, size: await store.blobs.size(record.digest as Digest), mediaType: '' }], read)
  }
  return fromRegistry(args, target)
}

async function fromIndexes(tops: readonly Descriptor[], read: BlobReader): Promise<ReadAttestation[]> {
  const out: ReadAttestation[] = []
  for (const d of tops.slice(0, MAX_INDEXES)) {
    let doc: Partial<ImageIndex>
    try {
      doc = JSON.parse((await read(d, INDEX_LIMIT)).toString('utf8')) as Partial<ImageIndex>
    } catch {
      continue
    }
    if (Array.isArray(doc.manifests)) out.push(...(await readAttestations(doc as ImageIndex, read)))
  }
  return out
}

async function fromDisk(path: string): Promise<ReadAttestation[]> {
  const dir = (await fsp.stat(path)).isDirectory()
  const archive = dir ? undefined : await TarArchive.open(path, join(tmpdir(), `imagesmith-inspect-${process.pid}-${randomBytes(6).toString('hex')}`))
  try {
    const readName = async (name: string, max: number): Promise<Buffer> => {
      if (archive) {
        const m = archive.member(name)
        if (!m) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path} has no ${name}`, { path, member: name })
        if (m.size > max) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}: ${name} is larger than ${max} bytes`, { path, member: name, limit: max })
        return archive.read(m, max)
      }
      const st = await fsp.stat(join(path, name))
      if (st.size > max) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}: ${name} is larger than ${max} bytes`, { path, member: name, limit: max })
      return fsp.readFile(join(path, name))
    }
    const read: BlobReader = (d, max) => readName(`blobs/sha256/${d.digest.slice(7)}`, max)
    const top = JSON.parse((await readName('index.json', INDEX_LIMIT)).toString('utf8')) as ImageIndex
    // index.json itself may list the images and attestations (a layout written flat), or point at the index.
    return [...(await readAttestations(top, read)), ...(await fromIndexes(top.manifests ?? [], read))]
  } finally {
    await archive?.close()
  }
}

async function fromRegistry(args: ParsedArgs, text: string): Promise<ReadAttestation[]> {
  const ref = parseReference(text)
  const config = resolveRegistryOptions(registryFlags(args) ?? {})
  const client = new RegistryClient(config)
  try {
    const ep = pullEndpoints(ref.domain, config).at(-1)!
    const top = await client.getManifest(ep, ref.path, ref.digest ?? ref.tag ?? 'latest')
    const read: BlobReader = async (d, max) => {
      if (d.size > max) throw tooLarge(text, d)
      if (d.mediaType.includes('manifest') || d.mediaType.includes('index')) return (await client.getManifest(ep, ref.path, d.digest)).bytes
      const parts: Buffer[] = []
      for await (const c of client.blobStream(ep, ref.path, d)) parts.push(c as Buffer)
      return Buffer.concat(parts)
    }
    const doc = JSON.parse(top.bytes.toString('utf8')) as Partial<ImageIndex>
    return Array.isArray(doc.manifests) ? readAttestations(doc as ImageIndex, read) : []
  } finally {
    client.close()
  }
}

function tooLarge(target: string, d: Descriptor): ImagesmithError {
  return new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${target}: ${d.digest} is larger than an attestation is read`, { reference: target, digest: d.digest, size: d.size })
}
