import { createReadStream, promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { Parser, type ReadEntry } from 'tar'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { Descriptor, ImageConfig, ImageIndex, Manifest } from '../oci/types.js'

export interface InspectedImage {
  readonly name?: string
  readonly manifestDigest: Digest
  readonly manifest: Manifest
  readonly config: ImageConfig
}

/** JSON blobs above this size are not manifests or configs; they are only counted, never buffered. */
const JSON_LIMIT = 4 << 20

/**
 * Reads the images of an OCI archive (tar) or OCI layout dir without touching the store: only
 * index.json and small blobs are held in memory; layers are skipped.
 */
export async function inspectImages(path: string): Promise<InspectedImage[]> {
  let stat
  try {
    stat = await fsp.stat(path)
  } catch (e) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `no such file or directory: ${path}`, { path }, { cause: e })
  }
  const small = new Map<string, Buffer>()
  if (stat.isDirectory()) {
    const read = async (name: string) => {
      try {
        const st = await fsp.stat(join(path, name))
        if (st.size <= JSON_LIMIT) small.set(name, await fsp.readFile(join(path, name)))
      } catch {
        /* missing blob: reported when resolving */
      }
    }
    await read('index.json')
    const index = parseJson<ImageIndex>(small.get('index.json'), path, 'index.json')
    for (const d of index.manifests ?? []) await read(`blobs/sha256/${d.digest.slice(7)}`)
    for (const d of index.manifests ?? []) {
      const m = small.get(`blobs/sha256/${d.digest.slice(7)}`)
      if (m) await read(`blobs/sha256/${(JSON.parse(m.toString()) as Manifest).config?.digest?.slice(7)}`)
    }
  } else {
    await new Promise<void>((res, rej) => {
      const parser = new Parser({ strict: true })
      parser.on('entry', (e: ReadEntry) => {
        const name = e.path.replace(/^\.\//, '')
        if (e.type === 'File' && (e.size ?? 0) <= JSON_LIMIT) {
          const chunks: Buffer[] = []
          e.on('data', (c: Buffer) => chunks.push(c))
          e.on('end', () => small.set(name, Buffer.concat(chunks)))
        } else e.resume()
      })
      parser.on('error', (e: Error) => rej(new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path} is not a readable tar archive: ${e.message}`, { path }, { cause: e })))
      parser.on('end', () => res())
      createReadStream(path).on('error', rej).pipe(parser)
    })
  }
  const index = parseJson<ImageIndex>(small.get('index.json'), path, 'index.json')
  const out: InspectedImage[] = []
  for (const d of index.manifests ?? []) {
    const manifest = parseJson<Manifest>(small.get(`blobs/sha256/${d.digest.slice(7)}`), path, d.digest)
    const config = parseJson<ImageConfig>(small.get(`blobs/sha256/${manifest.config.digest.slice(7)}`), path, manifest.config.digest)
    out.push({ name: nameOf(d), manifestDigest: d.digest, manifest, config })
  }
  return out
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
