import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportImage, exporters, isOutputType } from '../../src/exporters/table.js'
import type { FinalImage } from '../../src/oci/types.js'
import { finalizeImage } from '../../src/artifacts/finalize.js'
import { BlobStore } from '../../src/store/blob-store.js'

let dir: string
let blobs: BlobStore
let image: FinalImage
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ism-exporters-'))
  blobs = new BlobStore(join(dir, 'store'))
  await blobs.init()
  image = await finalizeImage(blobs, { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } }, [])
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('exporter table', () => {
  it('is keyed by output type, each exporter named after its key', () => {
    expect(Object.keys(exporters).sort()).toEqual(['docker', 'oci', 'oci-layout', 'registry'])
    for (const [type, exporter] of Object.entries(exporters)) expect(exporter.name).toBe(type)
    expect(isOutputType('oci')).toBe(true)
    expect(isOutputType('registry')).toBe(true)
    expect(isOutputType('tarball')).toBe(false)
    expect(isOutputType('toString')).toBe(false)
  })

  it.each(['oci', 'oci-layout'] as const)('dispatches %s and returns { digest, path }', async (type) => {
    const dest = join(dir, `out-${type}`)
    const ctx = { blobs, tags: ['app:1'], epoch: 0 }
    const res = await exportImage(image, { type, dest }, ctx)
    expect(res).toEqual({ digest: image.manifestDigest, path: dest })
    expect(existsSync(dest)).toBe(true)
    if (type === 'oci-layout') expect(JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8')).manifests[0].digest).toBe(image.manifestDigest)
  })
})
