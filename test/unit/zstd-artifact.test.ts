import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FinalIndex, IndexImage } from '../../src/artifacts/artifact.js'
import { finalizeImage, finalizeIndex } from '../../src/artifacts/finalize.js'
import { zstdArtifact } from '../../src/artifacts/recompress.js'
import { writeAttestationManifest } from '../../src/attest/in-toto.js'
import type { FinalImage, ImageConfig, LayerRef } from '../../src/oci/types.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { requireTools } from '../helpers/tools.js'

const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
const TAR = 'application/vnd.oci.image.layer.v1.tar'
const bed = requireTools(['zstd'])

let dir: string
let blobs: BlobStore
let base: LayerRef
let own: LayerRef
let amd: FinalImage
let arm: FinalImage

const config = (architecture: string): ImageConfig => ({ architecture, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [base.diffId, own.diffId] } })
const layer = async (text: string): Promise<LayerRef> => {
  const put = await blobs.putBytes(text.repeat(64))
  return { digest: put.digest, diffId: put.digest, size: put.size, mediaType: TAR }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ism-zstd-artifact-'))
  blobs = new BlobStore(join(dir, 'store'))
  await blobs.init()
  base = await layer('the base image layer ')
  own = await layer('a layer this build made ')
  amd = await finalizeImage(blobs, config('amd64'), [base, own])
  arm = await finalizeImage(blobs, config('arm64'), [base, own])
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.skipIf(bed.skip)('zstdArtifact', () => {
  it('keeps the leading layers keepLayers names and recompresses the rest', async () => {
    const kept = await zstdArtifact(amd, blobs, { keepLayers: () => 1 })
    expect(kept.kind).toBe('image')
    const layers = (kept as FinalImage).layers
    expect(layers.map((l) => l.mediaType)).toEqual([TAR, ZSTD])
    expect(layers[0]).toEqual(base)
    expect(layers.map((l) => l.diffId)).toEqual([base.diffId, own.diffId])
    const forced = (await zstdArtifact(amd, blobs)) as FinalImage
    expect(forced.layers.map((l) => l.mediaType)).toEqual([ZSTD, ZSTD])
    expect(forced.layers[1]).toEqual(layers[1])
  })

  it('keeps the index annotations and each image descriptor\'s annotations', async () => {
    const index = await finalizeIndex(blobs, [{ platform: { os: 'linux', architecture: 'amd64' }, image: amd }, { platform: { os: 'linux', architecture: 'arm64' }, image: arm }],
      { 'org.example.index': '1' }, (p) => (p.architecture === 'arm64' ? { 'org.example.arm': 'yes' } : undefined))
    const z = (await zstdArtifact(index, blobs)) as FinalIndex
    expect(z.kind).toBe('index')
    expect(z.manifest.annotations).toEqual({ 'org.example.index': '1' })
    expect(z.manifest.manifests.map((m) => m.annotations)).toEqual([undefined, { 'org.example.arm': 'yes' }])
    expect(z.images.map((i) => i.image.layers.map((l) => l.mediaType))).toEqual([[ZSTD, ZSTD], [ZSTD, ZSTD]])
  })

  it('makes the attestations for the recompressed images: their subjects are the zstd manifests', async () => {
    const gzipAtt = await writeAttestationManifest(blobs, amd, [])
    const index = await finalizeIndex(blobs, [{ platform: { os: 'linux', architecture: 'amd64' }, image: amd }], undefined, undefined, [gzipAtt])
    let given: readonly IndexImage[] = []
    const z = (await zstdArtifact(index, blobs, { attest: async (images) => { given = images; return Promise.all(images.map((i) => writeAttestationManifest(blobs, i.image, []))) } })) as FinalIndex
    expect(given.map((i) => i.image.manifestDigest)).toEqual([z.images[0]!.image.manifestDigest])
    expect(z.images[0]!.image.manifestDigest).not.toBe(amd.manifestDigest)
    expect(z.attestations!.map((a) => a.subject)).toEqual([z.images[0]!.image.manifestDigest])
    expect(z.manifest.manifests[1]!.annotations).toEqual({ 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': z.images[0]!.image.manifestDigest })
  })
})
