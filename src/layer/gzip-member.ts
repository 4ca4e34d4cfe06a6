/**
 * One complete gzip member compressed by zlib on the libuv threadpool, with a header that never
 * depends on the zlib build. A concatenation of gzip members is one valid gzip file (RFC 1952
 * §2.2); `gzip -d`, Go's compress/gzip (docker, containerd) and Node's gunzip all read it as a
 * whole. Where a layer is cut into members is member-cut.ts's.
 */
import { gzip, type ZlibOptions } from 'node:zlib'

/** OS byte written into every member header: 3 = Unix, whatever platform zlib was built for. */
export const GZIP_OS_UNIX = 3

/** One complete gzip member of `input`, on the threadpool; `done` gets `input` back once zlib no longer reads it. */
export function compressMember(input: Buffer, zopts: ZlibOptions, done: ((chunk: Buffer) => void) | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gzip(input, zopts, (err, out) => {
      done?.(input)
      if (err) return reject(err)
      resolve(fixHeader(out))
    })
  })
}

/**
 * zlib writes a 10-byte header with FLG 0 (no name, comment or header CRC) and MTIME 0; pin
 * MTIME and OS explicitly so the bytes never depend on the zlib build. XFL follows the level.
 */
function fixHeader(member: Buffer): Buffer {
  if (member.length < 18 || member[0] !== 0x1f || member[1] !== 0x8b || member[2] !== 8 || member[3] !== 0) {
    throw new Error('zlib produced an unexpected gzip header')
  }
  member.fill(0, 4, 8)
  member[9] = GZIP_OS_UNIX
  return member
}
