/**
 * A multi-platform image (an index) in the CLI's local views: `inspect` of an archive and of a local
 * name shows the index with its platforms and each image; `images` lists it as one name whose SIZE
 * is every platform's unique layers unpacked; `tag` and `save` keep every platform.
 */
import { createReadStream, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/main.js'
import type { ImageIndex } from '../../src/oci/types.js'
import { BlobStore } from '../../src/store/blob-store.js'
import type { Digest } from '../../src/oci/media-types.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'

const bed = requireTools(['skopeo'])

let root: string
let cache: string
let archive: string
let indexDigest: string

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s) })
  return { code, out, err }
}

async function gunzippedSize(path: string): Promise<number> {
  let n = 0
  await pipeline(createReadStream(path), createGunzip(), new Writable({ write: (c: Buffer, _e, done) => ((n += c.length), done()) }))
  return n
}

beforeAll(async () => {
  root = await tmpDir('ism-index-views-')
  cache = join(root, 'cache')
  writeFileSync(join(root, 'shared.txt'), 'shared by both platforms\n')
  writeFileSync(join(root, 'amd64.txt'), 'x'.repeat(3000))
  writeFileSync(join(root, 'arm64.txt'), 'y'.repeat(7000))
  writeFileSync(join(root, 'Dockerfile'), 'FROM scratch\nCOPY shared.txt /shared.txt\nARG TARGETARCH\nCOPY $TARGETARCH.txt /arch.txt\n')
  archive = join(root, 'multi.tar')
  const r = await cli(['build', '-f', join(root, 'Dockerfile'), '--platform', 'linux/amd64,linux/arm64', '-t', 'multi/views:1', '-o', `type=oci,dest=${archive}`, '--cache-dir', cache, '--progress', 'quiet', root])
  expect(r.code, r.err).toBe(0)
  indexDigest = r.out.trim()
  expect(indexDigest).toMatch(/^sha256:/)
}, 120_000)
afterAll(cleanupTmpDirs, 60_000)

describe.skipIf(bed.skip)('an index in inspect, images, tag and save', () => {
  for (const what of ['an archive', 'a local name'] as const) {
    it(`inspect of ${what} shows the index, its platforms and each platform's image`, async () => {
      const target = what === 'an archive' ? archive : 'multi/views:1'
      const text = await cli(['inspect', target, '--cache-dir', cache])
      expect(text.code, text.err).toBe(0)
      expect(text.out).toContain(`Index:        ${indexDigest}\nPlatforms:    linux/amd64, linux/arm64\n`)
      expect(text.out.match(/^Platform: +.*$/gm)).toEqual(['Platform:     linux/amd64', 'Platform:     linux/arm64'])
      const json = JSON.parse((await cli(['inspect', target, '--json', '--cache-dir', cache])).out) as { platform: string; indexDigest: string; config: { architecture: string } }[]
      expect(json.map((i) => [i.platform, i.indexDigest, i.config.architecture])).toEqual([['linux/amd64', indexDigest, 'amd64'], ['linux/arm64', indexDigest, 'arm64']])
    })
  }

  it("images lists the index as one name; SIZE is every platform's unique layers unpacked (the shared one once)", async () => {
    const listed = JSON.parse((await cli(['images', '--format', 'json', '--cache-dir', cache])).out) as { name: string; digest: string; size: number; platforms?: string[] }[]
    expect(listed.map((r) => r.name)).toEqual(['docker.io/multi/views:1'])
    expect(listed[0]!.digest).toBe(indexDigest)
    expect(listed[0]!.platforms).toEqual(['linux/amd64', 'linux/arm64'])
    // The expectation counted independently: each unique layer of the archive's images gunzipped.
    const blobs = new BlobStore(cache)
    const index = JSON.parse((await runTool('skopeo', ['inspect', '--raw', `oci-archive:${archive}`])).stdout) as ImageIndex
    const layers = new Set<string>()
    for (const m of index.manifests) {
      const inspected = JSON.parse((await runTool('skopeo', ['inspect', '--override-os', 'linux', '--override-arch', m.platform!.architecture, `oci-archive:${archive}`])).stdout) as { Layers: string[] }
      for (const l of inspected.Layers) layers.add(l)
    }
    expect(layers.size).toBe(3)
    let expected = 0
    for (const d of layers) expected += await gunzippedSize(blobs.blobPath(d as Digest))
    expect(listed[0]!.size).toBe(expected)
  })

  it('tag names the whole index, and save writes every platform', async () => {
    expect((await cli(['tag', 'multi/views:1', 'multi/views:2', '--cache-dir', cache])).code).toBe(0)
    const listed = JSON.parse((await cli(['images', '--format', 'json', '--cache-dir', cache])).out) as { name: string; digest: string }[]
    expect(listed.find((r) => r.name === 'docker.io/multi/views:2')?.digest).toBe(indexDigest)
    const saved = join(root, 'saved.tar')
    const r = await cli(['save', 'multi/views:2', '-o', saved, '--cache-dir', cache])
    expect(r.code, r.err).toBe(0)
    expect(r.out.trim()).toBe(indexDigest)
    const raw = JSON.parse((await runTool('skopeo', ['inspect', '--raw', `oci-archive:${saved}`])).stdout) as ImageIndex
    expect(raw.manifests.map((m) => m.platform!.architecture)).toEqual(['amd64', 'arm64'])
  })
})
