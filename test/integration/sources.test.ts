/**
 * Local image sources against archives made by real tools: a docker-archive with two images
 * (`podman save -m`) brings only the chosen image's blobs into the store; a gzip'd OCI archive
 * resolves to the same image as the plain one.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { importLocalImage, parseLocalRef } from '../../src/sources/local.js'
import type { ResolvedImage } from '../../src/sources/resolve.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { createPodmanStore, requireTools, type PodmanStore } from '../helpers/tools.js'

const bed = requireTools(['podman', 'skopeo'], { needsRoot: true })
const platform = { os: 'linux', architecture: 'amd64' }

let work: string
let podman: PodmanStore
let twoImages: string
let secondArchive: string

async function importInto(ref: string): Promise<{ res: ResolvedImage; blobs: string[]; tmp: string[] }> {
  const root = join(work, `store-${Math.random().toString(36).slice(2)}`)
  const blobs = new BlobStore(root)
  await blobs.init()
  const res = await importLocalImage(parseLocalRef(ref)!, ref, blobs, platform)
  return { res, blobs: readdirSync(join(root, 'blobs', 'sha256')).map((h) => `sha256:${h}`).sort(), tmp: readdirSync(blobs.tmpDir) }
}

const expectedBlobs = (r: ResolvedImage) => [...new Set([r.manifestDigest, r.configDigest, ...r.layers.map((l) => l.digest)])].sort()

beforeAll(async () => {
  if (bed.skip) return
  work = await tmpDir('ism-sources-')
  const ctx = join(work, 'ctx')
  execFileSync('mkdir', ['-p', ctx])
  writeFileSync(join(ctx, 'hello.txt'), 'second image\n')
  secondArchive = join(work, 'second.tar')
  await image().from(`oci-archive:${busyboxArchive()}`).copy('hello.txt', '/hello.txt').build({ cacheDir: join(work, 'cache'), context: ctx, output: { type: 'oci', dest: secondArchive }, tags: ['second:1'] })
  podman = await createPodmanStore()
  await podman.podman(['pull', '-q', `oci-archive:${busyboxArchive()}`])
  await podman.podman(['tag', (await podman.podman(['images', '-q', '--no-trunc'])).stdout.trim().split('\n')[0]!, 'localhost/first:1'])
  await podman.podman(['tag', (await podman.load(secondArchive)).id, 'localhost/second:1'])
  twoImages = join(work, 'two.tar')
  await podman.podman(['save', '-m', '--format', 'docker-archive', '-o', twoImages, 'localhost/first:1', 'localhost/second:1'])
}, 300_000)

afterAll(async () => {
  await podman?.cleanup()
  await cleanupTmpDirs()
})

describe.skipIf(bed.skip)('local image sources', () => {
  it('a docker-archive with two images: only the chosen one\'s config, layers and manifest enter the store', async () => {
    const names = execFileSync('tar', ['-tf', twoImages], { encoding: 'utf8' }).trim().split('\n')
    // The archive really holds more than one image's worth: legacy per-layer files and two configs.
    expect(names.some((n) => /(^|\/)(json|VERSION)$/.test(n))).toBe(true)
    expect(JSON.parse(execFileSync('tar', ['-xOf', twoImages, 'manifest.json'], { encoding: 'utf8' }))).toHaveLength(2)

    const second = await importInto(`docker-archive:${twoImages}:localhost/second:1`)
    expect(second.res.layers).toHaveLength(2)
    expect(second.blobs).toEqual(expectedBlobs(second.res))
    expect(second.blobs).toHaveLength(4)

    const first = await importInto(`docker-archive:${twoImages}:first:1`)
    expect(first.res.layers).toHaveLength(1)
    expect(first.blobs).toEqual(expectedBlobs(first.res))
    expect(first.blobs).toHaveLength(3)
    expect(first.blobs).not.toContain(second.res.configDigest)

    // The same image as the OCI archive it came from: same diff_ids, and each uncompressed layer is its diff_id.
    const fromOci = await importInto(`oci-archive:${secondArchive}`)
    expect(second.res.config.rootfs.diff_ids).toEqual(fromOci.res.config.rootfs.diff_ids)
    for (const l of second.res.layers) expect(l.digest).toBe(l.diffId)

    const byIndex = await importInto(`docker-archive:${twoImages}:@1`)
    expect(byIndex.res.configDigest).toBe(second.res.configDigest)
    await expect(importInto(`docker-archive:${twoImages}:localhost/third:1`)).rejects.toMatchObject({
      code: 'UNKNOWN_FROM',
      details: { available: ['localhost/first:1', 'localhost/second:1'] },
    })
  })

  it('an OCI archive reads only the blobs its image uses, gzip\'d or not', async () => {
    const plain = await importInto(`oci-archive:${busyboxArchive()}`)
    expect(plain.blobs).toEqual(expectedBlobs(plain.res))
    const gz = join(work, 'busybox.tar.gz')
    execFileSync('sh', ['-c', `gzip -c ${JSON.stringify(busyboxArchive())} > ${JSON.stringify(gz)}`])
    const zipped = await importInto(`oci-archive:${gz}`)
    expect(zipped.res.manifestDigest).toBe(plain.res.manifestDigest)
    expect(zipped.blobs).toEqual(plain.blobs)
    expect(zipped.tmp).toEqual([]) // the decompressed copy is gone
  })
})
