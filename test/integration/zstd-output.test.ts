/**
 * `compression=zstd` on an OCI output: layers recompressed from the store's gzip ones, with the zstd
 * media type and the same diffIDs; podman loads and runs the archive and containerd imports and
 * unpacks it; the digest is the same on a rebuild; type=docker refuses zstd with a typed error.
 * Without force-compression the base image's layers stay gzip; descriptor annotations and
 * attestations (naming the zstd manifests) are kept; a registry output pushes the zstd layers.
 */
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseOutput } from '../../src/cli/build.js'
import { ErrorCodes } from '../../src/errors.js'
import { image, type LocalBuildResult } from '../../src/index.js'
import type { ImageIndex, Manifest } from '../../src/oci/types.js'
import { seedBases, startTestRegistry, type TestRegistry } from '../helpers/registry.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { createPodmanStore, podmanCleanup, podmanStore, requireTools, runTool, startDockerd, type Dockerd } from '../helpers/tools.js'
import { thrown } from '../helpers/thrown.js'

const bed = requireTools(['podman', 'runc', 'dockerd', 'ctr', 'zstd'])
const pushBed = requireTools(['docker-registry', 'skopeo', 'podman', 'runc', 'zstd'])
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'

/** A member of an OCI archive, and its index's first manifest (the image or the image index). */
function archiveOf(tar: string) {
  const member = (name: string) => execFileSync('tar', ['-xOf', tar, name], { maxBuffer: 64 << 20 })
  const blob = (d: string) => member(`blobs/sha256/${d.slice(7)}`)
  const top = JSON.parse(member('index.json').toString()) as ImageIndex
  return { member, blob, top }
}

describe.skipIf(bed.skip)('zstd output', () => {
  let work: string
  let ctx: string
  let archive: string
  let result: LocalBuildResult
  let gzipped: LocalBuildResult
  let dockerd: Dockerd | undefined
  const app = () => image().from(`oci-archive:${busyboxArchive()}`).copy('hello.txt', '/hello.txt').run('echo ran > /ran').cmd(['sh', '-c', 'cat /hello.txt /ran'])

  beforeAll(async () => {
    work = await tmpDir()
    ctx = join(work, 'ctx')
    mkdirSync(ctx)
    writeFileSync(join(ctx, 'hello.txt'), 'hello zstd\n')
    archive = join(work, 'app-zstd.tar')
    gzipped = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store'), output: { type: 'oci', dest: join(work, 'app-gzip.tar') } }) as LocalBuildResult
    result = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store'), output: { type: 'oci', dest: archive, compression: 'zstd', compressionLevel: 3, forceCompression: true } }) as LocalBuildResult
  }, 240_000)
  afterAll(async () => {
    await Promise.allSettled([dockerd?.stop(), podmanCleanup()])
    await cleanupTmpDirs()
  })

  it('force-compression writes every layer as tar+zstd with the same diffIDs, each blob a zstd frame of that tar', () => {
    expect(result.manifest!.layers.map((l) => l.mediaType)).toEqual(gzipped.manifest!.layers.map(() => ZSTD))
    expect(result.config!.rootfs.diff_ids).toEqual(gzipped.config!.rootfs.diff_ids)
    expect(result.digest).not.toBe(gzipped.digest)
    for (const [i, l] of result.manifest!.layers.entries()) {
      const blob = execFileSync('tar', ['-xOf', archive, `blobs/sha256/${l.digest.slice(7)}`], { maxBuffer: 64 << 20 })
      expect(blob.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))
      const tar = execFileSync('zstd', ['-dc'], { input: blob, maxBuffer: 64 << 20 })
      expect(`sha256:${createHash('sha256').update(tar).digest('hex')}`).toBe(result.config!.rootfs.diff_ids[i])
    }
  })

  it('records each conversion in the store: another export copies the zstd blobs, same digest', async () => {
    const { readdirSync } = await import('node:fs')
    expect(readdirSync(join(work, 'store', 'layer-zstd')).filter((n) => n.endsWith('.json'))).toHaveLength(result.manifest!.layers.length)
    const again = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store'), output: { type: 'oci', dest: join(work, 'again-warm.tar'), compression: 'zstd', compressionLevel: 3, forceCompression: true } })
    expect(again.digest).toBe(result.digest)
  })

  // RUN's files get the build's time unless SOURCE_DATE_EPOCH clamps them: every build here sets it.
  it('is the same digest when built again into a fresh store', async () => {
    const again = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store2'), output: { type: 'oci', dest: join(work, 'again.tar'), compression: 'zstd', compressionLevel: 3, forceCompression: true } })
    expect(again.digest).toBe(result.digest)
  })

  it('without force-compression the base image\'s layer stays gzip and this build\'s layers are zstd, in one manifest', async () => {
    const dest = join(work, 'mixed.tar')
    const mixed = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store'), output: { type: 'oci', dest, compression: 'zstd' } }) as LocalBuildResult
    const baseCount = gzipped.manifest!.layers.length - 2 // the COPY and the RUN are this build's
    expect(baseCount).toBeGreaterThan(0)
    expect(mixed.manifest!.layers.map((l) => l.mediaType)).toEqual([...Array(baseCount).fill(GZIP), ZSTD, ZSTD])
    // the base's blobs are the gzip ones the base came with; this build's are the zstd ones of the forced output
    expect(mixed.manifest!.layers.slice(0, baseCount)).toEqual(gzipped.manifest!.layers.slice(0, baseCount))
    expect(mixed.manifest!.layers.slice(baseCount).map((l) => l.digest)).toEqual(result.manifest!.layers.slice(baseCount).map((l) => l.digest))
    expect(mixed.config!.rootfs.diff_ids).toEqual(gzipped.config!.rootfs.diff_ids)
    const podman = await podmanStore()
    const r = await podman.run((await podman.load(dest)).id)
    expect(r.stdout).toBe('hello zstd\nran\n')
  }, 120_000)

  it('a multi-platform zstd output keeps the index and per-platform descriptor annotations', async () => {
    const multi = await image().from('scratch').copy('hello.txt', '/hello.txt').build({
      sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store'), platforms: ['linux/amd64', 'linux/arm64'],
      annotations: ['manifest-descriptor[linux/amd64]:desc.amd=yes', 'index:org.example.i=1'],
      output: { type: 'oci', dest: join(work, 'multi.tar'), compression: 'zstd' },
    }) as LocalBuildResult
    expect(multi.index!.annotations).toEqual({ 'org.example.i': '1' })
    expect(multi.index!.manifests.map((m) => m.annotations)).toEqual([{ 'desc.amd': 'yes' }, undefined])
    for (const i of multi.images!) expect(i.manifest.layers.map((l) => l.mediaType)).toEqual([ZSTD])
  }, 120_000)

  it('attestations of a zstd output name the zstd image manifests; podman loads and runs it', async () => {
    const dest = join(work, 'attested.tar')
    const attested = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store'), attest: { sbom: true, provenance: 'min' }, output: { type: 'oci', dest, compression: 'zstd', forceCompression: true } }) as LocalBuildResult
    const { blob, top } = archiveOf(dest)
    const index = JSON.parse(blob(top.manifests[0]!.digest).toString()) as ImageIndex
    expect(index.manifests).toHaveLength(2)
    const [img, att] = index.manifests
    // the image is the same zstd image as the one built without attestations
    expect(img!.digest).toBe(result.digest)
    expect(att!.annotations).toEqual({ 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': result.digest })
    const attManifest = JSON.parse(blob(att!.digest).toString()) as Manifest
    expect(attManifest.layers).toHaveLength(2)
    for (const l of attManifest.layers) {
      const statement = JSON.parse(blob(l.digest).toString()) as { subject: { digest: { sha256: string } }[] }
      expect(statement.subject.map((s) => `sha256:${s.digest.sha256}`)).toEqual([result.digest])
    }
    expect(attested.images![0]!.digest).toBe(result.digest)
    const podman = await podmanStore()
    const r = await podman.run((await podman.load(dest)).id)
    expect(r.stdout).toBe('hello zstd\nran\n')
  }, 180_000)

  it('podman loads and runs it', async () => {
    const podman = await podmanStore()
    const loaded = await podman.load(archive)
    const r = await podman.run(loaded.id)
    expect(r.stdout).toBe('hello zstd\nran\n')
  })

  it('containerd imports and unpacks it', async () => {
    dockerd = await startDockerd()
    await dockerd.ctr(['images', 'import', '--index-name', 'imagesmith-test/zstd:1', archive])
    const list = await dockerd.ctr(['images', 'ls'])
    expect(list.stdout).toContain('imagesmith-test/zstd:1')
    const snap = await dockerd.ctr(['snapshots', 'ls'])
    // one committed snapshot per layer: every zstd layer was decompressed and applied
    expect(snap.stdout.trim().split('\n').length - 1).toBeGreaterThanOrEqual(result.manifest!.layers.length)
  }, 120_000)

  it('type=docker with compression=zstd is a typed error (Docker before 23.0 cannot load zstd)', () => {
    expect(thrown(() => parseOutput('type=docker,compression=zstd'))).toMatchObject({ code: ErrorCodes.OUTPUT_COMPRESSION_UNSUPPORTED, details: { output: 'docker' } })
    expect(thrown(() => parseOutput('type=docker,dest=x.tar,compression=zstd'))).toMatchObject({ code: ErrorCodes.OUTPUT_COMPRESSION_UNSUPPORTED })
    expect(parseOutput('type=oci,dest=a.tar,compression=zstd,compression-level=19,force-compression=true')).toEqual({ type: 'oci', dest: 'a.tar', compression: 'zstd', compressionLevel: 19, forceCompression: true })
  })
})

describe.skipIf(pushBed.skip)('zstd registry output', () => {
  let work: string
  let ctx: string
  let reg: TestRegistry
  const app = () => image().from(`${reg.host}/library/busybox`).copy('hello.txt', '/hello.txt').cmd(['cat', '/hello.txt'])
  const raw = async (ref: string) => JSON.parse((await runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`])).stdout) as Manifest

  beforeAll(async () => {
    work = await tmpDir('ism-zstd-push-')
    ctx = join(work, 'ctx')
    mkdirSync(ctx)
    writeFileSync(join(ctx, 'hello.txt'), 'hello pushed zstd\n')
    reg = await startTestRegistry()
    await seedBases(reg)
  }, 180_000)
  afterAll(async () => {
    await reg?.stop()
    await cleanupTmpDirs()
  }, 60_000)

  it('the CLI takes compression keys on type=registry and image,push=true', () => {
    expect(parseOutput('type=registry,compression=zstd,compression-level=5')).toEqual({ type: 'registry', compression: 'zstd', compressionLevel: 5 })
    expect(parseOutput('type=image,push=true,compression=zstd,force-compression=true')).toEqual({ type: 'registry', compression: 'zstd', forceCompression: true })
  })

  it('pushes this build\'s layers as tar+zstd and mounts the gzip base layer; podman pulls and runs it', async () => {
    const tag = `${reg.host}/team/zstd:mixed`
    const r = await app().build({ context: ctx, cacheDir: join(work, 'store'), tags: [tag], registry: { configDir: join(work, 'no-config') }, output: { type: 'registry', compression: 'zstd' } }) as LocalBuildResult
    const m = await raw(tag)
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
    expect(m.layers.map((l) => l.mediaType)).toEqual([GZIP, ZSTD])
    expect(m.layers.map((l) => l.digest)).toEqual(r.manifest!.layers.map((l) => l.digest))
    expect(r.pushed).toMatchObject({ mounted: 1, blobs: 2 })
    const podman = await createPodmanStore()
    try {
      await podman.podman(['pull', '--tls-verify=false', tag], { timeoutMs: 120_000 })
      expect((await podman.run(tag)).stdout).toBe('hello pushed zstd\n')
    } finally {
      await podman.cleanup()
    }
  }, 240_000)

  it('force-compression pushes every layer as tar+zstd: the recompressed base layer is uploaded, not mounted', async () => {
    const tag = `${reg.host}/team/zstd-forced:1`
    const r = await app().build({ context: ctx, cacheDir: join(work, 'store'), tags: [tag], registry: { configDir: join(work, 'no-config') }, output: { type: 'registry', compression: 'zstd', forceCompression: true } }) as LocalBuildResult
    const m = await raw(tag)
    expect(m.layers.map((l) => l.mediaType)).toEqual([ZSTD, ZSTD])
    // a new repository: the zstd base layer, the COPY layer and the config are all uploaded, none mounted
    expect(r.pushed).toMatchObject({ mounted: 0, blobs: 3, skipped: 0 })
    const podman = await createPodmanStore()
    try {
      await podman.podman(['pull', '--tls-verify=false', tag], { timeoutMs: 120_000 })
      expect((await podman.run(tag)).stdout).toBe('hello pushed zstd\n')
    } finally {
      await podman.cleanup()
    }
  }, 240_000)
})
