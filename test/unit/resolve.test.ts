import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import { MediaType, type Digest } from '../../src/oci/media-types.js'
import type { Descriptor, Platform } from '../../src/oci/types.js'
import { normalizePlatform, platformMatches } from '../../src/oci/platform.js'
import { resolveImage, type BlobFetcher } from '../../src/sources/resolve.js'
import { BlobStore } from '../../src/store/blob-store.js'

/** A fake source: blobs in a map, put into the (real, temp) store only when the resolver asks. */
class MapFetcher implements BlobFetcher {
  readonly blobs = new Map<Digest, Buffer>()
  readonly fetched: Digest[] = []
  constructor(private readonly store: BlobStore) {}
  add(content: unknown, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
    const bytes = Buffer.isBuffer(content) ? content : Buffer.from(JSON.stringify(content))
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
    this.blobs.set(digest, bytes)
    return { mediaType, digest, size: bytes.length, ...extra }
  }
  async fetch(desc: Descriptor): Promise<void> {
    const bytes = this.blobs.get(desc.digest)
    if (!bytes) throw new Error(`no blob ${desc.digest}`)
    this.fetched.push(desc.digest)
    await this.store.putBytes(bytes)
  }
}

const dirs: string[] = []
let store: BlobStore
let src: MapFetcher
beforeEach(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ism-resolve-'))
  dirs.push(dir)
  store = new BlobStore(dir)
  await store.init()
  src = new MapFetcher(store)
})
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

/** One single-layer image for `arch`, in Docker's or OCI's media types. */
function imageFor(arch: string, docker = false, variant?: string): { desc: Descriptor; layer: Descriptor; config: Descriptor } {
  const layerBytes = Buffer.from(`layer for ${arch}${variant ?? ''}`)
  const layer = src.add(layerBytes, docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip)
  const diffId = `sha256:${createHash('sha256').update(`diff ${arch}${variant ?? ''}`).digest('hex')}`
  const config = src.add({ architecture: arch, os: 'linux', ...(variant ? { variant } : {}), config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } }, docker ? MediaType.DockerConfig : MediaType.OciConfig)
  const manifestType = docker ? MediaType.DockerManifest : MediaType.OciManifest
  const desc = src.add({ schemaVersion: 2, mediaType: manifestType, config, layers: [layer] }, manifestType, {
    platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) },
  })
  return { desc, layer, config }
}

const resolve = (roots: readonly Descriptor[], platform: Platform) => resolveImage({ ref: 'test-image', roots, platform, blobs: store, fetcher: src })

describe('resolveImage', () => {
  it('walks OCI index → Docker manifest list → the platform asked for, variant included', async () => {
    const amd = imageFor('amd64', true)
    const v6 = imageFor('arm', true, 'v6')
    const v7 = imageFor('arm', true, 'v7')
    const arm64 = imageFor('arm64', true, 'v8')
    const list = src.add({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [amd.desc, v6.desc, v7.desc, arm64.desc] }, MediaType.DockerManifestList)
    const { platform: _p, ...listDesc } = list
    const index = src.add({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [listDesc] }, MediaType.OciIndex)

    const got = await resolve([index], { os: 'linux', architecture: 'arm', variant: 'v7' })
    expect(got.manifestDigest).toBe(v7.desc.digest)
    expect(got.config.architecture).toBe('arm')
    expect(got.layers).toEqual([{ digest: v7.layer.digest, diffId: got.config.rootfs.diff_ids[0], size: v7.layer.size, mediaType: MediaType.OciLayerGzip }])
    // Only the chosen image's blobs were fetched: index, list, its manifest, config and layer.
    expect(new Set(src.fetched)).toEqual(new Set([index.digest, list.digest, v7.desc.digest, v7.config.digest, v7.layer.digest]))
    expect(await store.has(v6.layer.digest)).toBe(false)

    expect((await resolve([index], { os: 'linux', architecture: 'arm' })).manifestDigest).toBe(v7.desc.digest) // arm means arm/v7
    expect((await resolve([index], { os: 'linux', architecture: 'arm64' })).manifestDigest).toBe(arm64.desc.digest) // arm64/v8 is arm64
    expect((await resolve([index], { os: 'linux', architecture: 'arm', variant: 'v6' })).manifestDigest).toBe(v6.desc.digest)
  })

  it('says which platforms the image offers when the one asked for is missing', async () => {
    const list = src.add({ schemaVersion: 2, manifests: [imageFor('amd64').desc, imageFor('arm', false, 'v7').desc] }, MediaType.OciIndex)
    const err = await resolve([list], { os: 'linux', architecture: 's390x' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: ErrorCodes.PLATFORM_NOT_FOUND, details: { reference: 'test-image', platform: 'linux/s390x', available: ['linux/amd64', 'linux/arm/v7'] } })
    expect((err as Error).message).toBe('test-image has no image for linux/s390x; it offers linux/amd64, linux/arm/v7')
  })

  it('takes a manifest whose descriptor names no platform, and reads a single manifest root', async () => {
    const { desc, config } = imageFor('amd64')
    const { platform: _p, ...bare } = desc
    const got = await resolve([bare], { os: 'linux', architecture: 'riscv64' })
    expect(got.manifestDigest).toBe(desc.digest)
    expect(got.configDigest).toBe(config.digest)
  })

  it('prefers a platform match over an earlier descriptor without one, and skips attestations', async () => {
    const arm = imageFor('arm64')
    const { platform: _p, ...bareArm } = arm.desc
    const amd = imageFor('amd64')
    const attestation = src.add({ schemaVersion: 2, config: amd.config, layers: [] }, MediaType.OciManifest, { platform: { os: 'unknown', architecture: 'unknown' } })
    const got = await resolve([attestation, bareArm, amd.desc], { os: 'linux', architecture: 'amd64' })
    expect(got.manifestDigest).toBe(amd.desc.digest)
  })

  it('refuses a manifest whose layers and diff_ids disagree, and non-image artifacts', async () => {
    const { layer, config } = imageFor('amd64')
    const two = src.add({ schemaVersion: 2, config, layers: [layer, layer] }, MediaType.OciManifest)
    await expect(resolve([two], { os: 'linux', architecture: 'amd64' })).rejects.toMatchObject({ code: ErrorCodes.BASE_IMAGE_INVALID })
    const helm = src.add({ schemaVersion: 2, config: { ...config, mediaType: 'application/vnd.cncf.helm.config.v1+json' }, layers: [layer] }, MediaType.OciManifest)
    await expect(resolve([helm], { os: 'linux', architecture: 'amd64' })).rejects.toMatchObject({ code: ErrorCodes.BASE_IMAGE_INVALID })
    const v1 = src.add({ schemaVersion: 1, name: 'x' }, 'application/vnd.docker.distribution.manifest.v1+prettyjws')
    await expect(resolve([v1], { os: 'linux', architecture: 'amd64' })).rejects.toMatchObject({ code: ErrorCodes.BASE_IMAGE_INVALID })
  })
})

describe('platform matching', () => {
  it.each([
    [{ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    [{ os: 'linux', architecture: 'armhf' }, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    [{ os: 'linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' }],
    [{ os: 'linux', architecture: 'amd64', variant: 'v1' }, { os: 'linux', architecture: 'amd64' }],
  ])('normalises %j to %j', (input, want) => expect(normalizePlatform(input)).toEqual(want))

  it('tells variants apart', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm' })).toBe(false)
    expect(platformMatches({ os: 'linux', architecture: 'amd64', variant: 'v3' }, { os: 'linux', architecture: 'amd64' })).toBe(false)
    expect(platformMatches({ os: 'windows', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' })).toBe(false)
  })
})
