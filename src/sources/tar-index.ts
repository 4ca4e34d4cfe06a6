import { spawn } from 'node:child_process'
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs'
import { posix } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { isTarHeader, sniffFile } from '../util/sniff.js'

/** Where a regular file's bytes sit inside an uncompressed tar. */
export interface TarMember {
  readonly offset: number
  readonly size: number
}

/**
 * Random access to the files of an image archive: one pass over the tar headers (seeking past
 * every body), then any member is read by its byte range. Only what the image needs is read at
 * all, so a layer the chosen image does not use costs nothing.
 */
export class TarArchive {
  private constructor(
    readonly path: string,
    readonly members: ReadonlyMap<string, TarMember>,
    private readonly cleanup: () => Promise<void>,
  ) {}

  /**
   * Indexes `path`. A compressed archive (gzip, bzip2, xz, zstd: `docker save | gzip` loads too)
   * is first decompressed to `tempPath`, removed again by {@link close}.
   */
  static async open(path: string, tempPath: string): Promise<TarArchive> {
    const magic = await sniffFile(path)
    if (magic === 'tar') return new TarArchive(path, await indexTar(path), async () => {})
    if (magic === 'unknown') throw new TarFormatError(`${path} is not a tar archive`)
    try {
      await decompress(path, magic, tempPath)
      return new TarArchive(tempPath, await indexTar(tempPath), () => fsp.rm(tempPath, { force: true }))
    } catch (e) {
      await fsp.rm(tempPath, { force: true })
      throw e
    }
  }

  has(name: string): boolean {
    return this.members.has(normalizeName(name))
  }

  member(name: string): TarMember | undefined {
    return this.members.get(normalizeName(name))
  }

  open(m: TarMember): Readable {
    if (m.size === 0) return Readable.from([])
    return createReadStream(this.path, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 })
  }

  async read(m: TarMember, limit: number): Promise<Buffer> {
    if (m.size > limit) throw new TarFormatError(`member of ${m.size} bytes is larger than the ${limit} expected`)
    const fh = await fsp.open(this.path, 'r')
    try {
      const buf = Buffer.alloc(m.size)
      const { bytesRead } = await fh.read(buf, 0, m.size, m.offset)
      if (bytesRead !== m.size) throw new TarFormatError('archive is truncated')
      return buf
    } finally {
      await fh.close()
    }
  }

  close(): Promise<void> {
    return this.cleanup()
  }
}

export class TarFormatError extends Error {
  override name = 'TarFormatError'
}

export function normalizeName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '')
}

async function decompress(path: string, kind: 'gzip' | 'bzip2' | 'xz' | 'zstd', dest: string): Promise<void> {
  if (kind === 'gzip') return pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), createGunzip({ chunkSize: 256 << 10 }), createWriteStream(dest))
  const child = spawn(kind, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<number>((res, rej) => { child.on('error', rej); child.on('close', (code) => res(code ?? 1)) })
  await pipeline(child.stdout, createWriteStream(dest))
  const code = await exited
  if (code !== 0) throw new TarFormatError(`${kind} -dc failed (${code}): ${stderr.trim()}`)
}

function cString(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len)
  const nul = field.indexOf(0)
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8')
}

function numeric(b: Buffer, start: number, len: number): number {
  // GNU base-256 for sizes past 8 GiB: high bit set, big-endian after it.
  if (b[start]! & 0x80) {
    let n = b[start]! & 0x7f
    for (let i = 1; i < len; i++) n = n * 256 + b[start + i]!
    return n
  }
  const s = cString(b, start, len).trim()
  return s === '' ? 0 : parseInt(s, 8)
}

/** PAX records: `<len> <key>=<value>\n`. */
function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>()
  let pos = 0
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos)
    if (sp < 0) break
    const len = parseInt(data.toString('latin1', pos, sp), 10)
    if (!(len > 0)) break
    const rec = data.subarray(sp + 1, pos + len - 1).toString('utf8')
    const eq = rec.indexOf('=')
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1))
    pos += len
  }
  return out
}

/** Reads every header of an uncompressed tar; regular files (and hard links to them) are indexed. */
async function indexTar(path: string): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>()
  // Docker 25+ writes `<id>/layer.tar` as a symlink into blobs/; resolved once all files are known.
  const symlinks = new Map<string, string>()
  const fh = await fsp.open(path, 'r')
  try {
    const { size: total } = await fh.stat()
    const header = Buffer.alloc(512)
    let pos = 0
    let longName: string | undefined
    let longLink: string | undefined
    let pax = new Map<string, string>()
    const readAt = async (buf: Buffer, at: number) => {
      const { bytesRead } = await fh.read(buf, 0, buf.length, at)
      if (bytesRead !== buf.length) throw new TarFormatError('archive is truncated')
    }
    while (pos + 512 <= total) {
      await readAt(header, pos)
      if (header.every((x) => x === 0)) break
      if (!isTarHeader(header)) throw new TarFormatError(`bad tar header at byte ${pos}`)
      const type = String.fromCharCode(header[156]!)
      let size = numeric(header, 124, 12)
      const body = pos + 512
      if (pax.has('size')) size = Number(pax.get('size'))
      const next = body + Math.ceil(size / 512) * 512
      if (type === 'L' || type === 'K' || type === 'x') {
        const data = Buffer.alloc(size)
        await readAt(data, body)
        if (type === 'L') longName = cString(data, 0, size)
        else if (type === 'K') longLink = cString(data, 0, size)
        else pax = parsePax(data)
        pos = next
        continue
      }
      const ustar = header.toString('latin1', 257, 263) === 'ustar\0'
      const prefix = ustar ? cString(header, 345, 155) : ''
      const name = normalizeName(pax.get('path') ?? longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100)))
      const link = pax.get('linkpath') ?? longLink ?? cString(header, 157, 100)
      if (type === '0' || type === '\0' || type === '7') members.set(name, { offset: body, size })
      else if (type === '1') {
        const target = members.get(normalizeName(link))
        if (target) members.set(name, target)
      } else if (type === '2') symlinks.set(name, link)
      longName = longLink = undefined
      pax = new Map()
      pos = next
    }
    for (const name of symlinks.keys()) {
      let target = name
      for (let hops = 0; hops < 16 && !members.has(target); hops++) {
        const to = symlinks.get(target)
        if (to === undefined) break
        target = normalizeName(to.startsWith('/') ? posix.normalize(to) : posix.join(posix.dirname(target), to))
      }
      const m = members.get(target)
      if (m) members.set(name, m)
    }
    return members
  } finally {
    await fh.close()
  }
}
