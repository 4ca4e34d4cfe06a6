/** An OCI archive already at dest with the same bytes is not written again; any difference is. */
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ociArchiveExporter } from '../../src/exporters/oci-archive.js'
import { archiveUnchanged } from '../../src/exporters/oci-archive-unchanged.js'
import type { LayerEntry } from '../../src/layer/entry.js'
import { tarChunks } from '../../src/layer/tar-writer.js'
import type { FinalImage } from '../../src/oci/types.js'
import { finalizeImage } from '../../src/artifacts/finalize.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { writeLayer } from '../../src/layer/write-layer.js'

let dir: string
let blobs: BlobStore
let image: FinalImage
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ism-archive-same-'))
  blobs = new BlobStore(join(dir, 'store'))
  await blobs.init()
  // A layer over the byte-compare threshold (64 KiB), so its blob is checked by header only.
  writeFileSync(join(dir, 'big.bin'), Buffer.alloc(3 << 20, 7))
  const layer = await writeLayer([{ type: 'file', path: 'big.bin', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 3 << 20, source: { path: join(dir, 'big.bin') } }], blobs, { compression: 'none' })
  image = await finalizeImage(blobs, { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.diffId] } }, [layer])
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const exportTo = (dest: string, tags: string[]) => ociArchiveExporter.export(image, { dest }, { blobs, tags, epoch: 0 })

describe('OCI archive: identical output is not rewritten', () => {
  it('a second export of the same image and tags keeps the file (same inode); other tags or a damaged file are written anew', async () => {
    const dest = join(dir, 'out.tar')
    await exportTo(dest, ['app:1'])
    const first = statSync(dest)
    expect(first.size).toBeGreaterThan(3 << 20)
    const res = await exportTo(dest, ['app:1'])
    expect(res).toEqual({ digest: image.manifestDigest, path: dest })
    expect(statSync(dest).ino).toBe(first.ino)
    expect(statSync(dest).mtimeMs).toBe(first.mtimeMs)

    // Another tag changes index.json and manifest.json: written again, as a new file.
    await exportTo(dest, ['app:2'])
    const second = statSync(dest)
    expect(second.ino).not.toBe(first.ino)
    expect(readFileSync(dest).includes(Buffer.from('app:2'))).toBe(true)

    // A damaged copy (one metadata byte, or cut short) is replaced.
    const bytes = readFileSync(dest)
    const at = bytes.lastIndexOf(Buffer.from('app:2'))
    bytes[at + 4] = '3'.charCodeAt(0)
    writeFileSync(dest, bytes)
    expect(readFileSync(dest).includes(Buffer.from('app:3'))).toBe(true)
    await exportTo(dest, ['app:2'])
    expect(readFileSync(dest).includes(Buffer.from('app:3'))).toBe(false)
    truncateSync(dest, statSync(dest).size - 512)
    const cut = statSync(dest).ino
    await exportTo(dest, ['app:2'])
    expect(statSync(dest).ino).not.toBe(cut)
    expect(archiveUnchanged(dest, [])).toBe(false)
  })

  it('compares small files byte for byte and large ones by header, and says no for a missing or foreign file', () => {
    const small = join(dir, 'small.txt')
    writeFileSync(small, 'abc')
    const entries: LayerEntry[] = [
      { type: 'dir', path: 'blobs', mode: 0o755, uid: 0, gid: 0, mtime: 0 },
      { type: 'file', path: 'blobs/small', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 3, source: { path: small } },
      { type: 'file', path: 'index.json', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 2, source: { data: Buffer.from('{}') } },
    ]
    const tar = join(dir, 'hand.tar')
    writeFileSync(tar, Buffer.concat([...tarChunks(entries)]))
    expect(archiveUnchanged(tar, entries)).toBe(true)
    writeFileSync(small, 'abd')
    expect(archiveUnchanged(tar, entries)).toBe(false)
    expect(archiveUnchanged(join(dir, 'none.tar'), entries)).toBe(false)
    expect(archiveUnchanged(dir, entries)).toBe(false)
  })
})
