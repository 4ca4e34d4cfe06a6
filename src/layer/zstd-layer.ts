/**
 * A stored layer recompressed as zstd (`application/vnd.oci.image.layer.v1.tar+zstd`) for an output
 * that asks for it. Node 20's zlib has no zstd, so the tar streams through Debian's `zstd` binary in
 * a pipe (`-T0`: its output does not depend on the worker count, so the digest is the same on any
 * machine with the same zstd version). The uncompressed tar is checked against the layer's diffID
 * on the way, and nothing is committed unless zstd exits cleanly.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { ErrorCodes, ImagesmithError, abortError } from '../errors.js'
import { MediaType, type Digest } from '../oci/media-types.js'
import type { LayerRef } from '../oci/types.js'
import { writeFileAtomic } from '../store/atomic-write.js'
import type { BlobStore } from '../store/blob-store.js'
import { StoreLayout } from '../store/layout.js'

/** zstd's own range (buildx's `compression-level` for zstd: 0–22; 0 is zstd's default, 3). */
export const ZSTD_LEVELS = { min: 0, max: 22, default: 3 } as const

let zstdVersion: string | undefined

/** `v1.5.4`: zstd's output may change between versions, so a recorded conversion names the one that made it. */
function version(): string {
  zstdVersion ??= /v\d+\.\d+\.\d+/.exec(spawnSync('zstd', ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[0] ?? 'unknown'
  return zstdVersion
}

/**
 * The zstd blob of `layer` at `level`: recorded in the store once made (`layer-zstd/`), so another
 * export of the same layer copies it instead of compressing again.
 */
export async function zstdLayer(blobs: BlobStore, layer: LayerRef, level: number = ZSTD_LEVELS.default, signal?: AbortSignal): Promise<LayerRef> {
  if (layer.mediaType === MediaType.OciLayerZstd) return layer
  if (!Number.isInteger(level) || level < ZSTD_LEVELS.min || level > ZSTD_LEVELS.max) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `zstd compression-level must be an integer ${ZSTD_LEVELS.min}–${ZSTD_LEVELS.max}, got ${level}`, { level })
  }
  const dir = new StoreLayout(blobs.root).dir('layerZstd')
  const record = join(dir, `${layer.digest.slice(7)}-${level || ZSTD_LEVELS.default}-${version()}.json`)
  const known = await fsp.readFile(record, 'utf8').then((t) => JSON.parse(t) as LayerRef, () => undefined)
  if (known && known.diffId === layer.diffId && /^sha256:[0-9a-f]{64}$/.test(known.digest) && (await blobs.has(known.digest as Digest))) {
    return Object.freeze({ digest: known.digest, diffId: layer.diffId, size: known.size, mediaType: MediaType.OciLayerZstd })
  }
  const made = await compressZstd(blobs, layer, level, signal)
  await fsp.mkdir(dir, { recursive: true })
  await writeFileAtomic(record, JSON.stringify(made))
  return made
}

async function compressZstd(blobs: BlobStore, layer: LayerRef, level: number, signal?: AbortSignal): Promise<LayerRef> {
  const child = spawn('zstd', ['-q', '-c', '-T0', `-${level || ZSTD_LEVELS.default}`, ...(level > 19 ? ['--ultra'] : [])], { stdio: ['pipe', 'pipe', 'pipe'] })
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }))
    child.once('close', (code) => resolve({ code }))
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (s: string) => { if (stderr.length < 4096) stderr += s })
  const onAbort = () => child.kill()
  signal?.addEventListener('abort', onAbort, { once: true })
  const diffHash = createHash('sha256')
  const tar = layer.mediaType === MediaType.OciLayer || layer.mediaType === MediaType.DockerLayer ? blobs.open(layer.digest) : blobs.open(layer.digest).pipe(createGunzip({ chunkSize: 1 << 20 }))
  const feeding = pipeline(tar, async function* (src: AsyncIterable<Buffer>) {
    for await (const b of src) {
      diffHash.update(b)
      yield b
    }
  }, child.stdin).catch((e: unknown) => {
    child.kill()
    return e
  })
  async function* compressed(): AsyncGenerator<Buffer> {
    for await (const b of child.stdout as AsyncIterable<Buffer>) yield b
    const [fed, { code, error }] = await Promise.all([feeding, exited])
    if (signal?.aborted) throw abortError(signal)
    if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ImagesmithError(ErrorCodes.TOOL_NOT_FOUND, 'compression=zstd needs the zstd binary on PATH (apt-get install zstd): Node 20 has no zstd', { tool: 'zstd' }, { cause: error })
    }
    if (fed instanceof Error) throw fed
    if (error || code !== 0) throw new ImagesmithError(ErrorCodes.INTERNAL, `zstd failed on layer ${layer.digest}: ${stderr.trim() || `exit ${code}`}`, { layer: layer.digest }, error ? { cause: error } : undefined)
    const diffId = `sha256:${diffHash.digest('hex')}`
    if (diffId !== layer.diffId) throw new ImagesmithError(ErrorCodes.BLOB_CORRUPT, `layer ${layer.digest} does not uncompress to its diffID ${layer.diffId} (got ${diffId})`, { expected: layer.diffId, actual: diffId })
  }
  try {
    const { digest, size } = await blobs.putStream(Readable.from(compressed()))
    return Object.freeze({ digest: digest as Digest, diffId: layer.diffId, size, mediaType: MediaType.OciLayerZstd })
  } finally {
    signal?.removeEventListener('abort', onAbort)
    if (child.exitCode === null) child.kill()
  }
}
