import { spawn } from 'node:child_process'
import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { readTarEntries } from '../layer/tar-reader.js'
import type { Digest } from '../oci/media-types.js'
import type { LayerRef } from '../oci/types.js'
import type { BlobStore } from '../store/blob-store.js'
import { nameFromBytes } from '../util/names.js'
import { sniffFile } from '../util/sniff.js'

/** A file of the final image a cataloger reads: its bytes and the layer (diffID) that put it there. */
export interface ImageFile {
  readonly path: string
  readonly data: Buffer
  readonly layer: Digest
}

/** Most bytes kept of one file (a dpkg status of ~10k packages is ~10 MiB); a larger one is skipped. */
export const MAX_FILE_BYTES = 32 << 20
/** Most bytes kept of all files: an image that holds more is refused (ATTESTATION_INPUT_TOO_LARGE). */
export const MAX_TOTAL_BYTES = 256 << 20
/** Most files kept (package.json of node_modules, dist-info METADATA, …). */
export const MAX_FILES = 200_000

/** Whether a path (no leading '/') is one a cataloger reads: the rest of the image is streamed past. */
export type FileFilter = (path: string) => boolean

export interface ScanResult {
  readonly files: readonly ImageFile[]
  /** Files over {@link MAX_FILE_BYTES}, skipped (and said so in the SBOM). */
  readonly skipped: readonly string[]
}

/**
 * The files of the final image's filesystem that `wanted` picks, read layer by layer through the
 * streaming tar reader with whiteouts applied (`.wh.NAME` removes NAME and what is under it,
 * `.wh..wh..opq` empties a directory of what lower layers put there), so what a later layer
 * deleted is not listed. Only wanted files are kept, each bounded.
 */
export async function scanImageFiles(
  blobs: BlobStore,
  layers: readonly LayerRef[],
  wanted: FileFilter,
  signal?: AbortSignal,
  limits: { readonly fileBytes: number; readonly totalBytes: number; readonly files: number } = { fileBytes: MAX_FILE_BYTES, totalBytes: MAX_TOTAL_BYTES, files: MAX_FILES },
): Promise<ScanResult> {
  const kept = new Map<string, ImageFile & { readonly index: number }>()
  const skipped = new Set<string>()
  let total = 0
  const drop = (pred: (p: string, f: { index: number }) => boolean) => {
    for (const [p, f] of kept) if (pred(p, f)) { total -= f.data.length; kept.delete(p) }
  }
  for (let index = 0; index < layers.length; index++) {
    throwIfAborted(signal)
    const layer = layers[index]!
    const input = await openLayer(blobs, layer.digest, signal)
    try {
      for await (const e of readTarEntries(input.stream)) {
        const path = nameFromBytes(e.header.name).replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '')
        const slash = path.lastIndexOf('/')
        const dir = slash < 0 ? '' : path.slice(0, slash)
        const base = path.slice(slash + 1)
        if (base === '.wh..wh..opq') {
          drop((p, f) => f.index < index && p.startsWith(`${dir}/`))
          continue
        }
        if (base.startsWith('.wh.')) {
          const gone = (dir ? `${dir}/` : '') + base.slice(4)
          drop((p) => p === gone || p.startsWith(`${gone}/`))
          continue
        }
        // Anything put at a kept path (a new file, or a dir or link over it) replaces it.
        if (kept.has(path)) drop((p) => p === path)
        if (e.header.type === 'dir') continue
        if (!wanted(path)) continue
        let data: Buffer | undefined
        if (e.header.type === 'file') {
          if (e.header.size > limits.fileBytes) {
            skipped.add(path)
            continue
          }
          const parts: Buffer[] = []
          for await (const b of e.body()) parts.push(b)
          data = Buffer.concat(parts)
        } else if (e.header.type === 'hardlink') {
          data = kept.get(nameFromBytes(e.header.linkname).replace(/^(\.\/|\/)+/, ''))?.data
        }
        if (data === undefined) continue
        if (kept.size >= limits.files || total + data.length > limits.totalBytes) {
          throw new ImagesmithError(ErrorCodes.ATTESTATION_INPUT_TOO_LARGE, `the image holds more package metadata than an SBOM reads (${limits.files} files, ${limits.totalBytes} bytes)`, {
            path, layer: layer.digest, limitFiles: limits.files, limitBytes: limits.totalBytes,
          })
        }
        total += data.length
        kept.set(path, { path, data, layer: layer.diffId, index })
      }
      await input.done()
    } finally {
      input.stop()
    }
  }
  return { files: [...kept.values()].map(({ path, data, layer }) => ({ path, data, layer })), skipped: [...skipped].sort() }
}

/** A layer blob decompressed as it is read (gzip in Node, zstd through the `zstd` tool, or a plain tar). */
async function openLayer(blobs: BlobStore, digest: Digest, signal?: AbortSignal): Promise<{ stream: Readable; done(): Promise<void>; stop(): void }> {
  // A layer an imported build cache answered for may still be remote: fetched before its codec is sniffed from the file.
  await blobs.ensure(digest, signal)
  const codec = await sniffFile(blobs.blobPath(digest))
  if (codec === 'gzip') {
    const gunzip = createGunzip({ chunkSize: 256 << 10 })
    const flow = pipeline(blobs.open(digest), gunzip).catch((e: unknown) => { gunzip.destroy(e as Error) })
    return { stream: gunzip, done: () => flow, stop: () => gunzip.destroy() }
  }
  if (codec === 'zstd') {
    const zstd = spawn('zstd', ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] })
    const out = new PassThrough()
    const exited = new Promise<number>((res, rej) => { zstd.on('error', rej); zstd.on('close', (code) => res(code ?? 1)) })
    const flow = Promise.all([pipeline(blobs.open(digest), zstd.stdin), pipeline(zstd.stdout, out)]).catch((e: unknown) => { out.destroy(e as Error) })
    return {
      stream: out,
      done: async () => {
        await flow
        if ((await exited) !== 0) throw new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `zstd could not decompress layer ${digest}`, { digest })
      },
      stop: () => { zstd.kill(); out.destroy() },
    }
  }
  const s = blobs.open(digest)
  return { stream: s, done: async () => {}, stop: () => s.destroy() }
}
