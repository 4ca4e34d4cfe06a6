/**
 * What `cache du` counts and `cache prune` takes beyond blobs: snapshots sharing files by hard
 * link, and the compiled build scripts kept under the store; named indexes keep their images' blobs.
 */
import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { artifactBlobs } from '../../src/artifacts/artifact.js'
import { finalizeImage, finalizeIndex } from '../../src/artifacts/finalize.js'
import { writeAttestationManifest } from '../../src/attest/in-toto.js'
import { cacheUsage, pruneCache } from '../../src/store/gc.js'
import { nameImage } from '../../src/store/local-images.js'
import { Store } from '../../src/store/store.js'

let tmp: string
let store: Store

beforeEach(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'imagesmith-gc-'))
  store = new Store(join(tmp, 'store'))
  await store.init()
})

afterEach(() => {
  rmSync(tmp, { recursive: true, force: true })
})

describe('cache usage', () => {
  it('a file hard-linked between two snapshots counts once', async () => {
    const a = store.layout.snapshot(`sha256:${'a'.repeat(64)}`)
    const b = store.layout.snapshot(`sha256:${'b'.repeat(64)}`)
    mkdirSync(join(a, 'app'), { recursive: true })
    mkdirSync(join(b, 'app'), { recursive: true })
    writeFileSync(join(a, 'app', 'shared.bin'), Buffer.alloc(10_000))
    linkSync(join(a, 'app', 'shared.bin'), join(b, 'app', 'shared.bin'))
    writeFileSync(join(b, 'app', 'own.bin'), Buffer.alloc(300))
    const snapshots = (await cacheUsage(store)).filter((r) => r.kind === 'snapshot')
    expect(snapshots).toHaveLength(2)
    expect(snapshots.reduce((n, r) => n + r.size, 0)).toBe(10_300)
  })
})

describe('compiled build scripts', () => {
  it('are listed, pruned by --filter until like the rest, and all go with --all', async () => {
    const dir = join(store.layout.root, 'scripts')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'old.mjs'), 'export {}\n')
    writeFileSync(join(dir, 'new.mjs'), 'export const x = 1\n')
    const tenDaysAgo = new Date(Date.now() - 10 * 24 * 3600 * 1000)
    utimesSync(join(dir, 'old.mjs'), tenDaysAgo, tenDaysAgo)
    expect((await cacheUsage(store)).filter((r) => r.kind === 'script').map((r) => r.id).sort()).toEqual(['new.mjs', 'old.mjs'])

    const week = await pruneCache(store, { until: 7 * 24 * 3600 * 1000 })
    expect(week.removed.map((r) => `${r.kind} ${r.id}`)).toEqual(['script old.mjs'])
    expect(readdirSync(dir)).toEqual(['new.mjs'])

    await pruneCache(store, { all: true })
    expect(readdirSync(dir)).toEqual([])
  })
})

describe('named indexes', () => {
  it('keep every blob of their images and attestation manifests through a prune', async () => {
    const layer = await store.blobs.putBytes('layer bytes')
    const ref = { digest: layer.digest, diffId: layer.digest, size: layer.size, mediaType: 'application/vnd.oci.image.layer.v1.tar' }
    const image = await finalizeImage(store.blobs, { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } }, [ref])
    const att = await writeAttestationManifest(store.blobs, image, [{ _type: 'https://in-toto.io/Statement/v0.1', subject: [], predicateType: 'https://spdx.dev/Document', predicate: {} }])
    const index = await finalizeIndex(store.blobs, [{ platform: { os: 'linux', architecture: 'amd64' }, image }], undefined, undefined, [att])
    await nameImage(store, 'app:1', index)
    await pruneCache(store, { now: Date.now() + 1e9 })
    for (const d of artifactBlobs(index)) expect(await store.blobs.has(d), d).toBe(true)
  })
})
