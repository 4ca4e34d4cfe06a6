/**
 * The entries of one layer blob as path facts (kind, size, owner, mode, and on request a content
 * digest), streamed through the tar reader: a layer is never held in memory, only its list of
 * paths. Whiteouts come out as what they delete, as the OCI layer spec defines them.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { readTarEntries, TarHeaderError, type TarEntryType } from '../layer/tar-reader.js'
import { nameFromBytes } from '../util/names.js'

export type LayerFileKind = TarEntryType | 'other' | 'whiteout' | 'opaque'

export interface LayerFile {
  /** Relative to the root, no leading or trailing slash. A whiteout's path is what it deletes; an opaque marker's, its directory. */
  readonly path: string
  readonly kind: LayerFileKind
  /** Body bytes (regular files only). */
  readonly size: number
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Symlink or hard link target. */
  readonly link?: string
  /** sha256 hex of the body, when asked for (`hash: true`). */
  readonly sha256?: string
}

export interface LayerFiles {
  readonly files: LayerFile[]
  /** Bytes of the uncompressed tar (the layer's diffID covers these). */
  readonly tarBytes: number
}

/** Entries one layer may hold before it is refused (a stranger's image). */
export const MAX_LAYER_ENTRIES = 2_000_000
/** Entries all the layers of one image may hold together (each costs a path in memory). */
export const MAX_IMAGE_ENTRIES = 5_000_000

const WHITEOUT = '.wh.'
const OPAQUE = '.wh..wh..opq'

/**
 * Reads the layer blob `blob` (gzip, zstd or plain tar, told apart by their magic bytes).
 * `hash` also digests each file's body (for `diff`); without it bodies are skipped unread.
 */
export async function readLayerFiles(blob: Readable, what: string, opts: { hash?: boolean; maxEntries?: number } = {}): Promise<LayerFiles> {
  const limit = Math.min(opts.maxEntries ?? MAX_LAYER_ENTRIES, MAX_LAYER_ENTRIES)
  const files: LayerFile[] = []
  const counted = { bytes: 0 }
  const tar = decompressed(blob, what)
  try {
    for await (const e of readTarEntries(countBytes(tar, counted))) {
      if (files.length >= limit) {
        throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `layer ${what} holds more than ${limit} entries (of at most ${MAX_IMAGE_ENTRIES} per image)`, { layer: what, limit })
      }
      const h = e.header
      const path = cleanPath(nameFromBytes(h.name))
      if (path === '') continue
      const marker = whiteoutOf(path, h.mode, h.uid, h.gid)
      if (marker) {
        files.push(marker)
        continue
      }
      const meta = { mode: h.mode & 0o7777, uid: h.uid, gid: h.gid }
      let sha256: string | undefined
      if (opts.hash && h.type === 'file') {
        const hash = createHash('sha256')
        for await (const piece of e.body()) hash.update(piece)
        sha256 = hash.digest('hex')
      }
      const link = h.type === 'symlink' || h.type === 'hardlink' ? cleanLink(nameFromBytes(h.linkname), h.type) : undefined
      files.push({
        path, kind: h.type ?? 'other', ...meta, size: h.size,
        ...(link !== undefined ? { link } : {}), ...(sha256 !== undefined ? { sha256 } : {}),
      })
    }
  } catch (e) {
    if (e instanceof TarHeaderError) {
      throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `layer ${what} is not a readable tar: ${e.message} (at byte ${e.offset})`, { layer: what, offset: e.offset }, { cause: e })
    }
    // zlib's errors (Z_DATA_ERROR, Z_BUF_ERROR: a corrupt or cut gzip stream) are the layer's fault.
    const code = (e as NodeJS.ErrnoException).code
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `layer ${what} is not a readable gzip stream: ${(e as Error).message}`, { layer: what }, { cause: e })
    }
    throw e
  } finally {
    blob.destroy()
  }
  return { files, tarBytes: counted.bytes }
}

/** The whiteout or opaque marker an entry named `path` is, if it is one. */
function whiteoutOf(path: string, mode: number, uid: number, gid: number): LayerFile | undefined {
  const slash = path.lastIndexOf('/')
  const base = path.slice(slash + 1)
  if (!base.startsWith(WHITEOUT)) return undefined
  const dir = slash < 0 ? '' : path.slice(0, slash)
  const meta = { size: 0, mode: mode & 0o7777, uid, gid }
  if (base === OPAQUE) return { path: dir, kind: 'opaque', ...meta }
  return { path: dir === '' ? base.slice(WHITEOUT.length) : `${dir}/${base.slice(WHITEOUT.length)}`, kind: 'whiteout', ...meta }
}

/** An entry as the layer writer recorded it (store/layer-summary.ts): its tar path, type, size and owner. */
export function layerFileOf(rawPath: string, type: string, size: number, mode: number, uid: number, gid: number): LayerFile | undefined {
  const path = cleanPath(rawPath)
  if (path === '') return undefined
  return whiteoutOf(path, mode, uid, gid) ?? { path, kind: KINDS.has(type) ? (type as TarEntryType) : 'other', size: type === 'file' ? size : 0, mode: mode & 0o7777, uid, gid }
}
const KINDS = new Set<string>(['file', 'hardlink', 'symlink', 'char', 'block', 'dir', 'fifo'])

/** The tar path a {@link LayerFile} was read from (whiteouts and opaque markers by their `.wh.` names). */
export function rawPathOf(f: LayerFile): string {
  if (f.kind === 'opaque') return f.path === '' ? OPAQUE : `${f.path}/${OPAQUE}`
  if (f.kind !== 'whiteout') return f.path
  const slash = f.path.lastIndexOf('/')
  return slash < 0 ? `${WHITEOUT}${f.path}` : `${f.path.slice(0, slash)}/${WHITEOUT}${f.path.slice(slash + 1)}`
}

/** `./a/b/`, `/a/b` and `a/b` are one path, `a/b`. */
function cleanPath(p: string): string {
  let s = 0
  let e = p.length
  while (s < e && (p[s] === '/' || (p[s] === '.' && (s + 1 === e || p[s + 1] === '/')))) s++
  while (e > s && p[e - 1] === '/') e--
  return p.slice(s, e)
}

/** A hard link names a path in the layer (cleaned like one); a symlink's target is kept as written. */
function cleanLink(target: string, type: TarEntryType): string {
  return type === 'hardlink' ? cleanPath(target) : target
}

async function* countBytes(src: AsyncIterable<Buffer>, counted: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const b of src) {
    counted.bytes += b.length
    yield b
  }
}

const GZIP = [0x1f, 0x8b]
const ZSTD = [0x28, 0xb5, 0x2f, 0xfd]

/** The uncompressed tar of a layer blob: gunzip, `zstd -d` in a pipe (Node 20's zlib has no zstd), or as it is. */
async function* decompressed(blob: Readable, what: string): AsyncGenerator<Buffer> {
  const it = blob[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const first = await it.next()
  if (first.done) return
  const head: Buffer = first.value
  const rest = Readable.from((async function* () {
    yield head
    for (;;) {
      const n = await it.next()
      if (n.done) return
      yield n.value
    }
  })(), { objectMode: false })
  const starts = (magic: number[]) => magic.every((b, i) => head[i] === b)
  if (starts(GZIP)) {
    yield* pipeline(rest, createGunzip({ chunkSize: 1 << 20 }), () => {}) as unknown as AsyncIterable<Buffer>
    return
  }
  if (starts(ZSTD)) {
    yield* zstdDecompressed(rest, what)
    return
  }
  yield* rest as AsyncIterable<Buffer>
}

async function* zstdDecompressed(input: Readable, what: string): AsyncGenerator<Buffer> {
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] })
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }))
    child.once('close', (code) => resolve({ code }))
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (s: string) => { if (stderr.length < 4096) stderr += s })
  pipeline(input, child.stdin, () => {})
  try {
    for await (const b of child.stdout as AsyncIterable<Buffer>) yield b
  } finally {
    if (child.exitCode === null) child.kill()
  }
  const { code, error } = await exited
  if (error || code !== 0) {
    const missing = (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
    throw new ImagesmithError(
      missing ? ErrorCodes.TOOL_NOT_FOUND : ErrorCodes.INVALID_ARGUMENT,
      missing ? `layer ${what} is zstd-compressed and no zstd binary is on PATH (apt-get install zstd)` : `layer ${what}: zstd -d failed: ${stderr.trim() || `exit ${code}`}`,
      { layer: what, ...(missing ? { tool: 'zstd' } : {}) },
      error ? { cause: error } : undefined,
    )
  }
}
