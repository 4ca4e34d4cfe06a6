import { closeSync, openSync, readSync, promises as fsp } from 'node:fs'

/** What a blob or file starts with: a compression format, a plain tar, or something else. */
export type Magic = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'tar' | 'unknown'

/** Bytes {@link sniff} needs to tell every kind apart (a whole tar header block). */
export const SNIFF_BYTES = 512

const XZ = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])

/**
 * Tells the format from the first bytes, never from a name. Compression is decided by its magic
 * number; 'tar' needs a whole header block whose checksum matches (Go's archive/tar checks the
 * same), so a text file that happens to start like a tar name is not taken for one.
 */
export function sniff(head: Uint8Array): Magic {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength)
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip'
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd'
  if (b.length >= 6 && b.subarray(0, 6).equals(XZ)) return 'xz'
  if (b.length >= 3 && b.toString('latin1', 0, 3) === 'BZh') return 'bzip2'
  if (isTarHeader(b)) return 'tar'
  return 'unknown'
}

/** A valid tar header block: the checksum field matches the unsigned byte sum. */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < 512) return false
  const field = Buffer.from(block.buffer, block.byteOffset + 148, 8).toString('latin1').replace(/\0.*$/s, '').trim()
  if (!/^[0-7]+$/.test(field)) return false
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!
  return parseInt(field, 8) === sum
}

/** The first `n` bytes of a file (fewer when it is shorter). */
export function readHeadSync(path: string, n = SNIFF_BYTES): Buffer {
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.alloc(n)
    return buf.subarray(0, readSync(fd, buf, 0, n, 0))
  } finally {
    closeSync(fd)
  }
}

export async function readHead(path: string, n = SNIFF_BYTES): Promise<Buffer> {
  const fh = await fsp.open(path, 'r')
  try {
    const buf = Buffer.alloc(n)
    const { bytesRead } = await fh.read(buf, 0, n, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

export async function sniffFile(path: string): Promise<Magic> {
  return sniff(await readHead(path))
}
