import { Parser, type ReadEntry } from 'tar'
import type { LayerRef } from '../../src/oci/types.js'
import type { BlobStore } from '../../src/store/blob-store.js'

export interface ListedEntry { type: string; mode: number; uid: number; gid: number; mtime: number; linkpath?: string; data: string }

/** Every entry of a layer blob with its bytes, read back from the store with node-tar's parser. */
export async function listLayerEntries(blobs: BlobStore, layer: LayerRef): Promise<Map<string, ListedEntry>> {
  const out = new Map<string, ListedEntry>()
  await new Promise<void>((resolve, reject) => {
    const p = new Parser({
      onReadEntry: (e: ReadEntry) => {
        const chunks: Buffer[] = []
        e.on('data', (c: Buffer) => chunks.push(c))
        e.on('end', () => out.set(e.path.replace(/\/$/, ''), {
          type: e.type, mode: (e.mode ?? 0) & 0o7777, uid: e.uid ?? -1, gid: e.gid ?? -1, mtime: Math.floor((e.mtime?.getTime() ?? 0) / 1000),
          ...(e.linkpath ? { linkpath: e.linkpath } : {}), data: Buffer.concat(chunks).toString('utf8'),
        }))
      },
    })
    p.on('end', resolve)
    p.on('error', reject)
    const s = blobs.open(layer.digest)
    s.on('error', reject)
    s.pipe(p as unknown as NodeJS.WritableStream)
  })
  return out
}
