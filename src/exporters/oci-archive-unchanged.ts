import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import type { LayerEntry } from '../layer/entry.js'
import { TarSerializer } from '../layer/tar-writer.js'

const BLOCK = 512
/** Blobs up to this size (configs, manifests) are compared byte for byte; layers by header only. */
const COMPARE_BYTES_UP_TO = 64 << 10

/**
 * Whether the file at `dest` already holds the archive `entries` serialize to, checked without
 * reading the layers: a no-op rebuild to the same tarball then rewrites nothing (a 200 MB layer
 * copied again cost more than the whole cache check). Every tar header, every metadata file
 * (index.json, manifest.json, …), every small blob and the end blocks must match byte for byte, and
 * the size exactly. A large blob is taken on its header: its name is the sha256 of its bytes and its
 * size is in the header, so only a same-size in-place edit of a layer inside the tarball goes
 * unseen, and that file no longer has the digest it is named by (any loader rejects it).
 * Any doubt (no file, a read error, an entry needing a PAX header) answers false: write it anew.
 */
export function archiveUnchanged(dest: string, entries: readonly LayerEntry[]): boolean {
  let fd: number
  try {
    fd = openSync(dest, 'r')
  } catch {
    return false
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile() || st.size !== expectedSize(entries)) return false
    let pos = 0
    const matches = (expected: Buffer): boolean => {
      const got = Buffer.allocUnsafe(expected.length)
      if (readSync(fd, got, 0, got.length, pos) !== got.length || !got.equals(expected)) return false
      pos += expected.length
      return true
    }
    for (const e of entries) {
      const tar = new TarSerializer({ chunkSize: BLOCK, reuse: 0 })
      if (e.type === 'file' && 'path' in e.source && e.size > COMPARE_BYTES_UP_TO) {
        // The serializer yields the header block before it reads any of the file.
        const chunks = tar.add(e)
        const header = chunks.next().value
        chunks.return(undefined)
        if (!header || header[156] === 0x78 /* 'x': PAX */ || !matches(header)) return false
        pos += padded(e.size)
        continue
      }
      const bytes = Buffer.concat([...tar.add(e), ...tar.end()])
      // end() adds the archive's two zero blocks; they are compared once, after the last entry.
      if (!matches(bytes.subarray(0, bytes.length - 2 * BLOCK))) return false
    }
    return matches(Buffer.alloc(2 * BLOCK)) && pos === st.size
  } catch {
    return false
  } finally {
    closeSync(fd)
  }
}

/** The archive's size if no entry needs a PAX header (otherwise the size check fails and it is rewritten). */
function expectedSize(entries: readonly LayerEntry[]): number {
  let n = 2 * BLOCK
  for (const e of entries) n += BLOCK + (e.type === 'file' ? padded(e.size) : 0)
  return n
}

function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK
}
