/**
 * Multi-platform builds: one build, one OCI image index with an image per platform, from a builder
 * and from a Dockerfile (a `FROM --platform=$BUILDPLATFORM` stage solved once for every platform),
 * written by the oci output, pushed to a real docker-registry and read back with real skopeo.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { main } from '../../src/cli/main.js'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image, fromDockerfile } from '../../src/index.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { ErrorCodes, isImagesmithError } from '../../src/errors.js'
import { ociArch } from '../../src/oci/platform.js'
import type { ImageIndex } from '../../src/oci/types.js'
import { Store } from '../../src/store/store.js'
import { storedArtifact } from '../../src/store/local-images.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js'

const bed = requireTools(['skopeo', 'docker-registry', 'tar'])
const skopeo = async (...args: string[]) => (await runTool('skopeo', args)).stdout
const PLATFORMS = ['linux/amd64', 'linux/arm64']

async function failure(p: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown>; message: string }> {
  try {
    await p
  } catch (e) {
    if (isImagesmithError(e)) return e as never
    throw e
  }
  throw new Error('expected the build to fail')
}

describe.skipIf(bed.skip || ociArch() !== 'amd64')('multi-platform builds', () => {
  let root: string
  let ctx: string
  beforeAll(async () => {
    root = await tmpDir('ism-multi-')
    ctx = join(root, 'ctx')
    mkdirSync(ctx)
    writeFileSync(join(ctx, 'a.txt'), 'a\n')
  })
  afterAll(cleanupTmpDirs, 60_000)

  it('a builder with platforms gives an index of two images, each config of its architecture; a tag names the index', async () => {
    const cacheDir = join(root, 'c1')
    const dest = join(root, 'app.tar')
    const started: string[] = []
    const r = await image().copy('a.txt', '/a.txt').cmd(['/a.txt']).build({
      context: ctx, cacheDir, platforms: ['linux/amd64', 'linux/arm64/v8'], tags: ['multi/app:1'], output: { type: 'oci', dest },
      onProgress: (e) => void (e.type === 'start' && started.push(e.description)),
    })
    const raw = JSON.parse(await skopeo('inspect', '--raw', `oci-archive:${dest}`)) as ImageIndex
    expect(raw.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(raw.manifests.map((m) => `${m.platform!.os}/${m.platform!.architecture}`)).toEqual(PLATFORMS)
    expect(r.index!.manifests.map((m) => m.digest)).toEqual(r.images!.map((i) => i.digest))
    expect(r.images!.map((i) => [i.platform, i.config.architecture])).toEqual([['linux/amd64', 'amd64'], ['linux/arm64', 'arm64']])
    for (const arch of ['amd64', 'arm64']) {
      const inspected = JSON.parse(await skopeo('inspect', '--override-os', 'linux', '--override-arch', arch, `oci-archive:${dest}`)) as { Architecture: string }
      expect(inspected.Architecture).toBe(arch)
    }
    // The single-image fields are the first platform's image.
    expect(r.configDigest).toBe(r.images![0]!.configDigest)
    // Each COPY made once per platform: no platform's step took the other's cache entry.
    const copies = r.vertices.filter((v) => v.description.includes('COPY'))
    expect(copies).toHaveLength(2)
    expect(started.filter((d) => d.includes('COPY')).sort()).toEqual(['[linux/amd64] COPY a.txt /a.txt', '[linux/arm64] COPY a.txt /a.txt'])
    expect(new Set(copies.map((v) => v.key)).size).toBe(2)
    expect(copies.every((v) => !v.cached)).toBe(true)
    const store = new Store(cacheDir)
    const record = await store.images.get('docker.io/multi/app:1')
    expect(record?.digest).toBe(r.digest)
    const stored = await storedArtifact(store, r.digest, 'multi/app:1')
    expect(stored.kind).toBe('index')
  })

  it('a base without the platform fails naming the base, the platform and what it has', async () => {
    const ref = `oci-archive:${busyboxArchive()}`
    const e = await failure(image().from(ref).copy('a.txt', '/a.txt').build({ context: ctx, cacheDir: join(root, 'c2'), platforms: PLATFORMS }))
    expect(e.code).toBe(ErrorCodes.PLATFORM_NOT_FOUND)
    expect(e.details).toMatchObject({ reference: ref, platform: 'linux/arm64', available: ['linux/amd64'] })
  })

  it('the docker output with two platforms fails before any work, saying to pick one or use oci', async () => {
    const cacheDir = join(root, 'c3')
    const e = await failure(image().copy('a.txt', '/a.txt').build({ context: ctx, cacheDir, platforms: PLATFORMS, output: { type: 'docker', host: 'unix:///nonexistent/docker.sock' } }))
    expect(e.code).toBe(ErrorCodes.INDEX_NOT_SUPPORTED)
    expect(e.details).toMatchObject({ output: 'docker', platforms: PLATFORMS })
    expect(e.message).toMatch(/pick one platform .*oci output/)
    expect(existsSync(cacheDir)).toBe(false)
  })

  it('annotations land as buildx places them: manifest[platform] on that manifest alone, index on the image index, index-descriptor in index.json', async () => {
    const dest = join(root, 'annotated.tar')
    const r = await image().copy('a.txt', '/a.txt').build({
      context: ctx, cacheDir: join(root, 'c5'), platforms: PLATFORMS, output: { type: 'oci', dest },
      annotations: ['all=1', 'manifest[linux/arm64]:only.arm=yes', 'index:org.opencontainers.image.title=multi', 'manifest-descriptor[linux/amd64]:desc.amd=yes', 'index-descriptor:top=1'],
    })
    const raw = JSON.parse(await skopeo('inspect', '--raw', `oci-archive:${dest}`)) as ImageIndex
    expect(raw.annotations).toEqual({ 'org.opencontainers.image.title': 'multi' })
    expect(r.images!.map((i) => i.manifest.annotations)).toEqual([{ all: '1' }, { all: '1', 'only.arm': 'yes' }])
    expect(r.index!.annotations).toEqual({ 'org.opencontainers.image.title': 'multi' })
    expect(r.index!.manifests.map((m) => m.annotations)).toEqual([{ 'desc.amd': 'yes' }, undefined])
    const top = JSON.parse((await runTool('tar', ['-xOf', dest, 'index.json'])).stdout) as ImageIndex
    expect(top.annotations).toBeUndefined()
    expect(top.manifests[0]!.digest).toBe(r.digest)
    expect(top.manifests[0]!.annotations).toMatchObject({ top: '1' })
  })

  it('a multi-platform annotation for a platform not built, or with nowhere to go, fails before any work', async () => {
    const cacheDir = join(root, 'c6')
    const notBuilt = await failure(image().copy('a.txt', '/a.txt').build({ context: ctx, cacheDir, platforms: PLATFORMS, annotations: ['manifest[linux/s390x]:k=v'] }))
    expect(notBuilt.code).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(notBuilt.message).toContain('linux/amd64, linux/arm64')
    const pushed = await failure(image().copy('a.txt', '/a.txt').build({ context: ctx, cacheDir, platforms: PLATFORMS, tags: ['127.0.0.1:1/x:1'], output: { type: 'registry' }, annotations: ['index-descriptor:k=v'] }))
    expect(pushed.code).toBe(ErrorCodes.ANNOTATION_NOT_STORABLE)
    expect(existsSync(cacheDir)).toBe(false)
  })

  describe('a Dockerfile with a build-platform stage, pushed', () => {
    let reg: TestRegistry
    beforeAll(async () => {
      reg = await startTestRegistry()
    }, 120_000)
    afterAll(async () => {
      await reg?.stop()
    }, 60_000)

    it('solves the native stage once, runs per-platform native steps with their TARGETARCH, and pushes an index skopeo reads per platform', async () => {
      const df = [
        `FROM --platform=$BUILDPLATFORM oci-archive:${busyboxArchive()} AS tool`,
        'RUN echo native-tool > /tool',
        `FROM --platform=$BUILDPLATFORM oci-archive:${busyboxArchive()} AS cross`,
        'ARG TARGETARCH',
        'RUN echo "$TARGETARCH" > /arch',
        'FROM scratch',
        'ARG TARGETARCH',
        'ENV ARCH=$TARGETARCH',
        'COPY --from=tool /tool /tool',
        'COPY --from=cross /arch /arch',
        '',
      ].join('\n')
      const tag = `${reg.host}/multi/df:1`
      const events: string[] = []
      const r = await fromDockerfile(df, { contextDir: ctx }).build({
        cacheDir: join(root, 'c4'), platforms: PLATFORMS, tags: [tag], output: { type: 'registry' }, registry: { insecure: [reg.host] },
        onProgress: (e) => void (e.type === 'start' && events.push(e.description)),
      })
      // The tool stage ran once for both platforms; the cross stage once per platform.
      expect(r.vertices.filter((v) => v.description.includes('echo native-tool'))).toHaveLength(1)
      expect(events.filter((d) => d.includes('echo native-tool'))).toEqual(['[linux/amd64] RUN echo native-tool > /tool'])
      expect(r.vertices.filter((v) => v.description.includes('$TARGETARCH" > /arch'))).toHaveLength(2)
      expect(r.images!.map((i) => i.config.config?.Env?.find((e) => e.startsWith('ARCH=')))).toEqual(['ARCH=amd64', 'ARCH=arm64'])
      expect(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${tag}`)).toContain(r.images![1]!.digest)
      for (const [i, arch] of ['amd64', 'arm64'].entries()) {
        const cfg = JSON.parse(await skopeo('inspect', '--config', '--tls-verify=false', '--override-os', 'linux', '--override-arch', arch, `docker://${tag}`)) as { architecture: string }
        expect(cfg.architecture).toBe(arch)
        // /arch in each image says its own platform, written by a native RUN.
        const layer = r.images![i]!.layers.at(-1)!
        const out = await runTool('tar', ['-xzOf', new BlobStore(join(root, 'c4')).blobPath(layer.digest), 'arch'])
        expect(out.stdout).toBe(`${arch}\n`)
      }
    }, 180_000)
  })
})

describe.skipIf(bed.skip)('imagesmith build --platform', () => {
  let root: string
  beforeAll(async () => {
    root = await tmpDir('ism-multi-cli-')
    writeFileSync(join(root, 'Dockerfile'), 'FROM scratch\nARG TARGETARCH\nENV ARCH=$TARGETARCH\nCOPY a.txt /a.txt\n')
    writeFileSync(join(root, 'a.txt'), 'a\n')
  })
  afterAll(cleanupTmpDirs, 60_000)

  const cli = async (argv: string[]): Promise<{ code: number; err: string }> => {
    let err = ''
    const code = await main(argv, { out: () => {}, err: (s) => (err += s) })
    return { code, err }
  }

  for (const [how, flags] of [['a comma list', ['--platform', 'linux/amd64,linux/arm64']], ['repeated flags', ['--platform', 'linux/amd64', '--platform', 'linux/arm64']]] as const) {
    it(`${how} gives an index, each image with its own TARGETARCH`, async () => {
      const dest = join(root, `${how.replace(/ /g, '-')}.tar`)
      const meta = join(root, `${how.replace(/ /g, '-')}.json`)
      const { code, err } = await cli(['build', '-f', join(root, 'Dockerfile'), ...flags, '-o', `type=oci,dest=${dest}`, '--metadata-file', meta, '--cache-dir', join(root, 'cache'), '--progress', 'plain', root])
      expect(err).toContain('[linux/arm64]')
      expect(code).toBe(0)
      const raw = JSON.parse(await skopeo('inspect', '--raw', `oci-archive:${dest}`)) as ImageIndex
      expect(raw.manifests.map((m) => m.platform!.architecture)).toEqual(['amd64', 'arm64'])
      const metadata = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, unknown>
      expect((metadata['containerimage.descriptor'] as { mediaType: string }).mediaType).toBe('application/vnd.oci.image.index.v1+json')
      for (const arch of ['amd64', 'arm64']) {
        const cfg = JSON.parse(await skopeo('inspect', '--config', '--override-os', 'linux', '--override-arch', arch, `oci-archive:${dest}`)) as { architecture: string; config: { Env: string[] } }
        expect(cfg.architecture).toBe(arch)
        expect(cfg.config.Env).toContain(`ARCH=${arch}`)
      }
    }, 120_000)
  }
})
