/**
 * Blobs the store knows only by where they are (a lazily imported cache's layers): read on demand
 * through the installed fetcher, verified, stored; a mismatch is BLOB_CORRUPT naming the digest and
 * the cache, with nothing stored; prune keeps a record a cache entry or a named image needs, and
 * drops one nothing needs or whose blob is here.
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { remoteFetchers } from '../../src/cache-share/remote-fetch.js'
import type { Digest } from '../../src/oci/media-types.js'
import { RegistryClient } from '../../src/registry/client.js'
import { resolveRegistryOptions } from '../../src/pipeline/resolve-options.js'
import { cacheUsage, pruneCache } from '../../src/store/gc.js'
import type { RemoteRecord } from '../../src/store/remote-blobs.js'
import { Store } from '../../src/store/store.js'

let tmp: string
let store: Store
const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest
const bytes = Buffer.from('layer bytes\n')
const digest = digestOf(bytes)

/** A cache directory (an OCI layout's blobs) holding `content` under `name`. */
function cacheDir(name: Digest, content: Buffer): string {
  const dir = join(tmp, 'cache-dir')
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true })
  writeFileSync(join(dir, 'blobs', 'sha256', name.slice(7)), content)
  return dir
}

const localRecord = (dir: string, d = digest, size = bytes.length): RemoteRecord => ({ digest: d, size, mediaType: 'application/vnd.oci.image.layer.v1.tar', source: { type: 'local', dir, ref: `type=local,src=${dir}` } })

beforeEach(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'imagesmith-remote-'))
  store = new Store(join(tmp, 'store'))
  await store.init()
  // Registry fetches are not reached here (local records only); the client is what a build installs.
  store.blobs.remote.use(remoteFetchers(new RegistryClient(resolveRegistryOptions({ configDir: join(tmp, 'docker') }, {})), store.blobs))
})

afterEach(() => {
  rmSync(tmp, { recursive: true, force: true })
})

describe('remote blobs', () => {
  it('a recorded blob is known but not held; open() fetches it, verified, stores it and drops the record', async () => {
    await store.blobs.remote.record(localRecord(cacheDir(digest, bytes)))
    expect(await store.blobs.has(digest)).toBe(false)
    expect(await store.blobs.known(digest)).toBe(true)
    expect(await text(store.blobs.open(digest))).toBe(bytes.toString())
    expect(await store.blobs.has(digest)).toBe(true)
    expect(await store.blobs.remote.get(digest)).toBeUndefined()
  })

  it('a source holding other bytes: BLOB_CORRUPT naming the digest and the cache, nothing stored, the record dropped; a later reader gets the same error', async () => {
    const other = Buffer.from('LAYER BYTES\n')
    expect(other.length).toBe(bytes.length)
    const dir = cacheDir(digest, other)
    await store.blobs.remote.record(localRecord(dir))
    const want = { code: 'BLOB_CORRUPT', details: { digest, source: `type=local,src=${dir}` } }
    await expect(store.blobs.ensure(digest)).rejects.toMatchObject(want)
    expect(await store.blobs.has(digest)).toBe(false)
    expect(await store.blobs.remote.get(digest)).toBeUndefined()
    expect(readdirSync(store.blobs.tmpDir)).toEqual([])
    await expect(store.blobs.ensure(digest)).rejects.toMatchObject(want)
    await expect(text(store.blobs.open(digest))).rejects.toMatchObject(want)
  })

  it('another process fetching the blob (and dropping its record) between this one looking for the blob and for its record: the blob is read, not BLOB_NOT_FOUND', async () => {
    await store.blobs.remote.record(localRecord(cacheDir(digest, bytes)))
    const other = new Store(store.root)
    other.blobs.remote.use(remoteFetchers(new RegistryClient(resolveRegistryOptions({ configDir: join(tmp, 'docker') }, {})), other.blobs))
    const remote = store.blobs.remote
    const get = remote.get.bind(remote)
    // This process has seen no blob; the other one fetches it before this one reads the record.
    remote.get = async (d: Digest) => {
      await other.blobs.ensure(d)
      return get(d)
    }
    expect(await text(store.blobs.open(digest))).toBe(bytes.toString())
    expect(await other.blobs.remote.get(digest)).toBeUndefined()
  })

  it('without a record, or without a fetcher for its source: BLOB_NOT_FOUND', async () => {
    await expect(store.blobs.ensure(digest)).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND' })
    const bare = new Store(store.root)
    await bare.blobs.remote.record(localRecord(cacheDir(digest, bytes)))
    await expect(bare.blobs.ensure(digest)).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND', details: { digest } })
    expect(await bare.blobs.has(digest)).toBe(false)
  })

  it('a record that is not whole JSON of this digest is no record', async () => {
    mkdirSync(store.layout.dir('remote'), { recursive: true })
    writeFileSync(store.layout.remoteBlob(digest), '{"digest":')
    expect(await store.blobs.known(digest)).toBe(false)
    writeFileSync(store.layout.remoteBlob(digest), JSON.stringify({ ...localRecord(tmp), digest: `sha256:${'0'.repeat(64)}` }))
    expect(await store.blobs.remote.get(digest)).toBeUndefined()
  })
})

describe('prune and remote records', () => {
  const key = (c: string) => c.repeat(64)
  const entry = (k: string, layer: Digest) => writeFileSync(store.layout.cacheEntry(k), JSON.stringify({ layer: { digest: layer, diffId: layer, size: 1, mediaType: 'x' }, keyDoc: {} }))

  it('a record a cache entry needs is kept like a blob, counting its own bytes only; one nothing needs, or whose blob is here, goes at once', async () => {
    const needed = `sha256:${key('a')}` as Digest
    const unneeded = `sha256:${key('b')}` as Digest
    for (const d of [needed, unneeded, digest]) await store.blobs.remote.record(localRecord(tmp, d, 1 << 30))
    await store.blobs.putStream(Readable.from([bytes]), digest)
    mkdirSync(store.layout.dir('cache'), { recursive: true })
    entry(key('1'), needed)
    entry(key('2'), digest)

    const usage = (await cacheUsage(store)).filter((r) => r.kind === 'remote')
    const byId = new Map(usage.map((r) => [r.id, r]))
    expect(byId.get(needed)).toMatchObject({ entries: [key('1')], named: false })
    expect(byId.get(needed)!.dangling).toBeUndefined()
    // The record's file, not the 1 GiB blob it names.
    expect(byId.get(needed)!.size).toBeLessThan(1000)
    expect(byId.get(unneeded)).toMatchObject({ entries: [], dangling: true })
    // Fetched since: the record goes, the blob's own entries stay with the blob.
    expect(byId.get(digest)).toMatchObject({ entries: [], dangling: true })
    expect((await cacheUsage(store)).find((r) => r.kind === 'blob' && r.id === digest)?.entries).toEqual([key('2')])
    // The entry naming a remote-only blob is not dangling.
    expect((await cacheUsage(store)).some((r) => r.kind === 'cache-entry' && r.id === key('1'))).toBe(false)

    const kept = await pruneCache(store, { until: 24 * 3600 * 1000 })
    expect(kept.removed.map((r) => `${r.kind} ${r.id}`).sort()).toEqual([`remote ${digest}`, `remote ${unneeded}`].sort())
    expect(await store.blobs.remote.get(needed)).toBeDefined()
    expect(existsSync(store.layout.cacheEntry(key('1')))).toBe(true)
    expect(await store.blobs.has(digest)).toBe(true)

    // Pruned like a blob: with its cache entries, first.
    await pruneCache(store)
    expect(await store.blobs.remote.get(needed)).toBeUndefined()
    expect(existsSync(store.layout.cacheEntry(key('1')))).toBe(false)
  })

  it('a record a named image needs is kept unless all; with all, the name goes with it', async () => {
    const layer = `sha256:${key('c')}` as Digest
    await store.blobs.remote.record(localRecord(tmp, layer, 5))
    const config = await store.blobs.putBytes('{"rootfs":{"diff_ids":[]}}')
    const manifest = await store.blobs.putBytes(JSON.stringify({ schemaVersion: 2, config: { digest: config.digest, size: config.size }, layers: [{ digest: layer, size: 5 }] }))
    await store.images.set({ name: 'docker.io/library/lazy:1', repository: 'lazy', tag: '1', digest: manifest.digest, created: new Date().toISOString(), size: 1 })
    expect((await cacheUsage(store)).find((r) => r.id === layer)).toMatchObject({ kind: 'remote', named: true })
    await pruneCache(store)
    expect(await store.blobs.remote.get(layer)).toBeDefined()
    const all = await pruneCache(store, { all: true })
    expect(all.untagged).toEqual(['docker.io/library/lazy:1'])
    expect(await store.blobs.remote.get(layer)).toBeUndefined()
  })
})
