/**
 * An image index (a multi-platform image) made from two single-platform builds of one COPY-only
 * builder, written by the oci and oci-layout outputs and pushed by the registry output: real skopeo
 * and umoci read what was written, and a real docker-registry what was pushed.
 */
import { readFileSync, statSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image, type LocalBuildResult } from '../../src/index.js'
import type { FinalIndex } from '../../src/artifacts/artifact.js'
import { finalizeIndex } from '../../src/artifacts/finalize.js'
import { exportArtifact } from '../../src/exporters/table.js'
import type { FinalImage } from '../../src/oci/types.js'
import { resolveRegistryOptions } from '../../src/pipeline/resolve-options.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js'

const bed = requireTools(['skopeo', 'umoci', 'docker-registry', 'tar'])

const skopeo = async (...args: string[]) => (await runTool('skopeo', args)).stdout

describe.skipIf(bed.skip)('an image index through the outputs', () => {
  let work: string
  let blobs: BlobStore
  let amd: FinalImage
  let arm: FinalImage
  let index: FinalIndex
  let indexBytes: string
  const bytesOf = (d: string) => readFileSync(blobs.blobPath(d as `sha256:${string}`), 'utf8')

  beforeAll(async () => {
    work = await tmpDir('ism-index-')
    const context = join(work, 'ctx')
    await mkdir(context, { recursive: true })
    await writeFile(join(context, 'hello.txt'), 'hello from every platform\n')
    const cacheDir = join(work, 'cache')
    // COPY only: no RUN, so no emulator is needed for the foreign platform.
    const app = image().copy('hello.txt', '/hello.txt').cmd(['/hello.txt'])
    blobs = new BlobStore(cacheDir)
    const final = (r: LocalBuildResult): FinalImage => ({
      kind: 'image', manifest: r.manifest, manifestDigest: r.digest, manifestSize: statSync(blobs.blobPath(r.digest)).size, config: r.config, configDigest: r.configDigest, layers: r.layers,
    })
    amd = final(await app.build({ context, cacheDir, platform: 'linux/amd64' }))
    arm = final(await app.build({ context, cacheDir, platform: 'linux/arm64' }))
    index = await finalizeIndex(blobs, [{ platform: { os: 'linux', architecture: 'amd64' }, image: amd }, { platform: { os: 'linux', architecture: 'arm64' }, image: arm }])
    indexBytes = bytesOf(index.manifestDigest)
  }, 120_000)

  afterAll(cleanupTmpDirs, 60_000)

  it('the oci output: skopeo reads the index as stored, picks each platform from it, and copies it whole', async () => {
    const dest = join(work, 'multi.tar')
    const res = await exportArtifact(index, { type: 'oci', dest }, { blobs, tags: ['multi/app:1'], epoch: 0 })
    expect(res).toEqual({ digest: index.manifestDigest, path: dest })
    expect(await skopeo('inspect', '--raw', `oci-archive:${dest}`)).toBe(indexBytes)
    // skopeo names the index's digest and reads the config of the platform's image.
    for (const [arch, img] of [['amd64', amd], ['arm64', arm]] as const) {
      const seen = JSON.parse(await skopeo('inspect', '--override-os', 'linux', '--override-arch', arch, `oci-archive:${dest}`)) as { Digest: string; Architecture: string }
      expect(seen).toMatchObject({ Digest: index.manifestDigest, Architecture: arch })
      expect(JSON.parse(await skopeo('inspect', '--config', '--override-os', 'linux', '--override-arch', arch, `oci-archive:${dest}`))).toEqual(JSON.parse(bytesOf(img.configDigest)))
    }
    // An index archive carries no manifest.json: docker load takes one image.
    const names = (await runTool('tar', ['-tf', dest])).stdout.trim().split('\n').sort()
    expect(names).not.toContain('manifest.json')
    const index_json = JSON.parse((await runTool('tar', ['-xOf', dest, 'index.json'])).stdout) as { manifests: { mediaType: string; digest: string; annotations: Record<string, string> }[] }
    expect(index_json.manifests).toEqual([{
      mediaType: 'application/vnd.oci.image.index.v1+json', digest: index.manifestDigest, size: index.manifestSize,
      annotations: { 'io.containerd.image.name': 'docker.io/multi/app:1', 'org.opencontainers.image.ref.name': '1' },
    }])
    const copied = join(work, 'copied')
    await skopeo('copy', '--all', `oci-archive:${dest}`, `oci:${copied}:x`)
    expect(await skopeo('inspect', '--raw', `oci:${copied}:x`)).toBe(indexBytes)
    // The same index again: the archive is left as it is.
    const before = statSync(dest).mtimeMs
    await exportArtifact(index, { type: 'oci', dest }, { blobs, tags: ['multi/app:1'], epoch: 0 })
    expect(statSync(dest).mtimeMs).toBe(before)
  })

  it('the oci-layout output: skopeo reads the index by its tag, and the arm64 image unpacks with umoci', async () => {
    const dest = join(work, 'layout')
    await exportArtifact(index, { type: 'oci-layout', dest }, { blobs, tags: ['multi/app:1'], epoch: 0 })
    expect(await skopeo('inspect', '--raw', `oci:${dest}:1`)).toBe(indexBytes)
    expect(JSON.parse(await skopeo('inspect', '--config', '--override-os', 'linux', '--override-arch', 'arm64', `oci:${dest}:1`))).toEqual(JSON.parse(bytesOf(arm.configDigest)))
    // umoci unpacks one image: skopeo picks it out of the index, byte for byte.
    const single = join(work, 'arm-only')
    await skopeo('copy', '--override-os', 'linux', '--override-arch', 'arm64', `oci:${dest}:1`, `oci:${single}:arm`)
    expect(await skopeo('inspect', '--raw', `oci:${single}:arm`)).toBe(bytesOf(arm.manifestDigest))
    const bundle = join(work, 'bundle')
    await runTool('umoci', ['raw', 'unpack', '--image', `${single}:arm`, bundle])
    expect(readFileSync(join(bundle, 'hello.txt'), 'utf8')).toBe('hello from every platform\n')
    // A single-platform image added to the same layout keeps the index beside it.
    await exportArtifact(amd, { type: 'oci-layout', dest }, { blobs, tags: ['multi/app:amd'], epoch: 0 })
    expect(await skopeo('inspect', '--raw', `oci:${dest}:1`)).toBe(indexBytes)
    expect(await skopeo('inspect', '--raw', `oci:${dest}:amd`)).toBe(bytesOf(amd.manifestDigest))
  })

  describe('the registry output', () => {
    let reg: TestRegistry
    beforeAll(async () => {
      reg = await startTestRegistry()
    }, 120_000)
    afterAll(async () => {
      await reg?.stop()
    }, 60_000)

    it('pushes each image manifest by digest, then the index under every tag; skopeo reads them back as built', async () => {
      const registry = resolveRegistryOptions({ configDir: join(work, 'no-docker-config') }, {})
      const tags = [`${reg.host}/multi/app:1`, `${reg.host}/multi/app:latest`]
      const res = await exportArtifact(index, { type: 'registry' }, { blobs, tags, epoch: 0, registry })
      // Two configs and two layers (the platforms' COPY layers differ only if their bytes do: counted once each).
      const distinct = new Set([amd.configDigest, arm.configDigest, ...amd.layers.map((l) => l.digest), ...arm.layers.map((l) => l.digest)])
      expect(res).toMatchObject({ digest: index.manifestDigest, ref: tags[0], pushed: { blobs: distinct.size, mounted: 0, skipped: 0, tags } })
      for (const t of tags) expect(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${t}`)).toBe(indexBytes)
      for (const img of [amd, arm]) expect(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/multi/app@${img.manifestDigest}`)).toBe(bytesOf(img.manifestDigest))
      const picked = JSON.parse(await skopeo('inspect', '--config', '--tls-verify=false', '--override-os', 'linux', '--override-arch', 'arm64', `docker://${tags[0]}`)) as unknown
      expect(picked).toEqual(JSON.parse(bytesOf(arm.configDigest)))

      // Again under another tag: the blobs are there, nothing is uploaded twice.
      const again = await exportArtifact(index, { type: 'registry' }, { blobs, tags: [`${reg.host}/multi/app:2`], epoch: 0, registry })
      expect(again.pushed).toMatchObject({ blobs: 0, bytes: 0, skipped: distinct.size })
      expect(await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/multi/app:2`)).toBe(indexBytes)
    })
  })
})
