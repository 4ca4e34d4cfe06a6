import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { artifactBlobs } from '../../src/artifacts/artifact.js'
import { finalizeImage, finalizeIndex } from '../../src/artifacts/finalize.js'
import { ErrorCodes } from '../../src/errors.js'
import { dockerExporter } from '../../src/exporters/docker.js'
import { exportArtifact } from '../../src/exporters/table.js'
import type { FinalImage, ImageConfig, LayerRef } from '../../src/oci/types.js'
import { BlobStore } from '../../src/store/blob-store.js'

let dir: string
let blobs: BlobStore
let amd: FinalImage
let arm: FinalImage
let armV7: FinalImage
let shared: LayerRef

const config = (architecture: string, variant?: string): ImageConfig => ({
  architecture, os: 'linux', ...(variant ? { variant } : {}), config: { Env: ['A=1'] }, rootfs: { type: 'layers', diff_ids: [shared.diffId] },
})

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ism-index-'))
  blobs = new BlobStore(join(dir, 'store'))
  await blobs.init()
  const layer = await blobs.putBytes('not really a tar, only bytes to name')
  shared = { digest: layer.digest, diffId: layer.digest, size: layer.size, mediaType: 'application/vnd.oci.image.layer.v1.tar' }
  amd = await finalizeImage(blobs, config('amd64'), [shared])
  arm = await finalizeImage(blobs, config('arm64'), [shared])
  armV7 = await finalizeImage(blobs, config('arm', 'v7'), [shared])
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('finalizeIndex', () => {
  it('writes a canonical OCI image index: sorted keys, no spaces, the images in the order given, each with its platform', async () => {
    const index = await finalizeIndex(blobs, [
      { platform: { os: 'linux', architecture: 'amd64' }, image: amd },
      { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, image: armV7 },
      { platform: { os: 'linux', architecture: 'arm64' }, image: arm },
    ], { 'org.opencontainers.image.title': 'app', 'org.opencontainers.image.created': '1970-01-01T00:00:00Z' })
    const desc = (i: FinalImage, platform: string) =>
      `{"digest":"${i.manifestDigest}","mediaType":"application/vnd.oci.image.manifest.v1+json","platform":${platform},"size":${i.manifestSize}}`
    const expected =
      '{"annotations":{"org.opencontainers.image.created":"1970-01-01T00:00:00Z","org.opencontainers.image.title":"app"},' +
      `"manifests":[${desc(amd, '{"architecture":"amd64","os":"linux"}')},${desc(armV7, '{"architecture":"arm","os":"linux","variant":"v7"}')},${desc(arm, '{"architecture":"arm64","os":"linux"}')}],` +
      '"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}'
    const stored = readFileSync(blobs.blobPath(index.manifestDigest))
    expect(stored.toString('utf8')).toBe(expected)
    expect(index.manifestDigest).toBe(`sha256:${createHash('sha256').update(expected).digest('hex')}`)
    expect(index.manifestSize).toBe(Buffer.byteLength(expected))
    expect(index.kind).toBe('index')
    expect(index.manifest.manifests.map((m) => m.digest)).toEqual([amd.manifestDigest, armV7.manifestDigest, arm.manifestDigest])
    expect(index.images.map((i) => i.image)).toEqual([amd, armV7, arm])
  })

  it('the digest depends on content only: the same images give the same index, the order of annotations aside', async () => {
    const images = [{ platform: { os: 'linux', architecture: 'amd64' }, image: amd }, { platform: { os: 'linux', architecture: 'arm64' }, image: arm }]
    const a = await finalizeIndex(blobs, images, { x: '1', y: '2' })
    const b = await finalizeIndex(blobs, images, { y: '2', x: '1' })
    expect(b.manifestDigest).toBe(a.manifestDigest)
    const none = await finalizeIndex(blobs, images)
    expect(none.manifest).not.toHaveProperty('annotations')
    expect(none.manifestDigest).not.toBe(a.manifestDigest)
    // Another order is another index (the order is what a runtime scans).
    expect((await finalizeIndex(blobs, [...images].reverse())).manifestDigest).not.toBe(none.manifestDigest)
  })

  it('needs an image, each platform once, and each image built for the platform it is listed under', async () => {
    await expect(finalizeIndex(blobs, [])).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    await expect(finalizeIndex(blobs, [{ platform: { os: 'linux', architecture: 'amd64' }, image: amd }, { platform: { os: 'linux', architecture: 'amd64' }, image: amd }])).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT, details: { platform: 'linux/amd64' },
    })
    await expect(finalizeIndex(blobs, [{ platform: { os: 'linux', architecture: 'arm64' }, image: amd }])).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT, details: { platform: 'linux/arm64', built: 'linux/amd64', image: amd.manifestDigest },
    })
  })

  it("lists every blob an index needs once: its own, then each image's manifest, config and layers", async () => {
    const index = await finalizeIndex(blobs, [{ platform: { os: 'linux', architecture: 'amd64' }, image: amd }, { platform: { os: 'linux', architecture: 'arm64' }, image: arm }])
    expect(artifactBlobs(index)).toEqual([index.manifestDigest, amd.manifestDigest, amd.configDigest, shared.digest, arm.manifestDigest, arm.configDigest])
    expect(artifactBlobs(amd)).toEqual([amd.manifestDigest, amd.configDigest, shared.digest])
  })
})

describe('exporting an index', () => {
  it('an OCI layout: index.json names the index under each tag; every blob is there', async () => {
    const index = await finalizeIndex(blobs, [{ platform: { os: 'linux', architecture: 'amd64' }, image: amd }, { platform: { os: 'linux', architecture: 'arm64' }, image: arm }])
    const dest = join(dir, 'layout')
    const res = await exportArtifact(index, { type: 'oci-layout', dest }, { blobs, tags: ['app:1'], epoch: 0 })
    expect(res).toEqual({ digest: index.manifestDigest, path: dest })
    expect(JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8'))).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{
        mediaType: 'application/vnd.oci.image.index.v1+json', digest: index.manifestDigest, size: index.manifestSize,
        annotations: { 'io.containerd.image.name': 'docker.io/library/app:1', 'org.opencontainers.image.ref.name': '1' },
      }],
    })
    for (const d of artifactBlobs(index)) expect(readFileSync(join(dest, 'blobs', 'sha256', d.slice(7)))).toEqual(readFileSync(blobs.blobPath(d)))
  })

  it('the docker output refuses an index with INDEX_NOT_SUPPORTED, naming the output and the platforms, before reaching an engine', async () => {
    const index = await finalizeIndex(blobs, [{ platform: { os: 'linux', architecture: 'amd64' }, image: amd }, { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, image: armV7 }])
    // No engine listens there: the refusal comes first.
    const err = await dockerExporter.export(index, { host: `unix://${join(dir, 'no-such.sock')}` }, { blobs, tags: ['app:1'], epoch: 0 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: ErrorCodes.INDEX_NOT_SUPPORTED, details: { output: 'docker', platforms: ['linux/amd64', 'linux/arm/v7'], digest: index.manifestDigest } })
    expect((err as Error).message).toContain('linux/amd64, linux/arm/v7')
  })
})
