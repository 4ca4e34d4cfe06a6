import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { Descriptor, ImageConfig, ImageIndex, Manifest } from '../oci/types.js'
import { TarArchive, TarFormatError } from './tar-index.js'

export interface InspectedImage {
  readonly name?: string
  readonly manifestDigest: Digest
  readonly manifest: Manifest
  readonly config: ImageConfig
}

/** JSON blobs above this size are not manifests or configs. */
const JSON_LIMIT = 4 << 20

/**
 * Reads the images of an OCI archive (tar) or OCI layout dir without touching the store: only
 * index.json, the manifests and the configs are read; layers are never opened.
 */
export async function inspectImages(path: string): Promise<InspectedImage[]> {
  let stat
  try {
    stat = await fsp.stat(path)
  } catch (e) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `no such file or directory: ${path}`, { path }, { cause: e })
  }
  let archive: TarArchive | undefined
  try {
    if (!stat.isDirectory()) archive = await TarArchive.open(path, join(tmpdir(), `imagesmith-inspect-${process.pid}-${randomBytes(6).toString('hex')}`))
    const read = async (name: string): Promise<Buffer | undefined> => {
      if (archive) {
        const m = archive.member(name)
        return m && m.size <= JSON_LIMIT ? archive.read(m, JSON_LIMIT) : undefined
      }
      const st = await fsp.stat(join(path, name)).catch(() => undefined)
      return st && st.size <= JSON_LIMIT ? fsp.readFile(join(path, name)) : undefined
    }
    const blob = (d: string) => read(`blobs/sha256/${String(d).slice(7)}`)
    const index = parseJson<ImageIndex>(await read('index.json'), path, 'index.json')
    const out: InspectedImage[] = []
    for (const d of index.manifests ?? []) {
      const manifest = parseJson<Manifest>(await blob(d.digest), path, d.digest)
      const config = parseJson<ImageConfig>(await blob(manifest.config?.digest), path, manifest.config?.digest ?? 'config')
      out.push({ name: nameOf(d), manifestDigest: d.digest, manifest, config })
    }
    return out
  } catch (e) {
    if (e instanceof TarFormatError) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path} is not a readable tar archive: ${e.message}`, { path }, { cause: e })
    throw e
  } finally {
    await archive?.close()
  }
}

function nameOf(d: Descriptor): string | undefined {
  return d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name']
}

function parseJson<T>(buf: Buffer | undefined, path: string, what: string): T {
  if (!buf) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}: ${what} is missing (not an OCI archive or layout?)`, { path, missing: what })
  try {
    return JSON.parse(buf.toString('utf8')) as T
  } catch (e) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}: ${what} is not valid JSON`, { path, file: what }, { cause: e })
  }
}
