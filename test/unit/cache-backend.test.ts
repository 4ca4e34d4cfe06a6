import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { CacheBackend, CacheRecord } from '../../src/cache/backend.js'
import { LocalCacheBackend } from '../../src/cache/local.js'
import { image } from '../../src/index.js'
import type { Digest } from '../../src/oci/media-types.js'
import type { LayerRef } from '../../src/oci/types.js'
import { executors } from '../../src/ops/table.js'
import { solve } from '../../src/solver/solve.js'
import type { AnyVertex } from '../../src/graph/node.js'
import type { CacheKey, ExecContext, ExecutorTable, ImageState } from '../../src/solver/types.js'
import { Store } from '../../src/store/store.js'

let tmp: string
let context: string

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ism-cache-backend-'))
  context = join(tmp, 'ctx')
  mkdirSync(context)
  writeFileSync(join(context, 'a.txt'), 'one\n')
  writeFileSync(join(context, 'b.txt'), 'two\n')
})
afterEach(() => rmSync(tmp, { recursive: true, force: true }))

/** Three layer steps (COPY, WORKDIR of a missing dir, ADD) and a config step that has no layer. */
const graph = () => image().from('scratch').copy('a.txt', '/app/').workdir('/srv').add('b.txt', '/srv/b.txt').label('k', 'v').graph()

async function storeAt(name: string): Promise<Store> {
  const store = new Store(join(tmp, name))
  await store.init()
  return store
}

function ctxFor(store: Store, log: string[], extra: Partial<ExecContext> = {}): ExecContext {
  return {
    store, contextDir: context, epoch: 0, clampRunMtimes: false, created: '1970-01-01T00:00:00Z',
    platform: { os: 'linux', architecture: 'amd64' }, noCache: false, compression: 'gzip', secrets: {}, network: 'default',
    onCacheKey: (key) => log.push(`key ${key.digest}`),
    emit: () => {},
    ...extra,
  }
}

function blobsIn(store: Store): Set<string> {
  const dir = store.layout.dir('blobs')
  return new Set(existsSync(dir) ? readdirSync(dir).map((h) => `sha256:${h}`) : [])
}

/** An importer over another store's cache: a key it knows brings that store's blob into the build's store. */
class ImportingBackend implements CacheBackend {
  readonly asked: { key: Digest; hadBlob: boolean }[] = []
  readonly recorded: Digest[] = []
  readonly #from: Store
  readonly #into: Store
  constructor(from: Store, into: Store) {
    this.#from = from
    this.#into = into
  }
  async lookup(key: CacheKey): Promise<LayerRef | undefined> {
    const layer = await new LocalCacheBackend(this.#from).lookup(key)
    this.asked.push({ key: key.digest, hadBlob: layer !== undefined && (await this.#into.blobs.has(layer.digest)) })
    if (layer) await this.#into.blobs.putBytes(await this.#from.blobs.readBytes(layer.digest))
    return layer
  }
  async record(key: CacheKey): Promise<void> {
    this.recorded.push(key.digest)
  }
}

/** Entries in memory; a hit needs the blob in the build's store, as the interface says. */
class MemoryBackend implements CacheBackend {
  readonly entries = new Map<Digest, CacheRecord>()
  readonly #store: Store
  readonly #log: string[]
  constructor(store: Store, log: string[]) {
    this.#store = store
    this.#log = log
  }
  async lookup(key: CacheKey): Promise<LayerRef | undefined> {
    this.#log.push(`lookup ${key.digest} blobs=${[...blobsIn(this.#store)].sort().join(',')}`)
    const e = this.entries.get(key.digest)
    return e && (await this.#store.blobs.has(e.layer.digest)) ? e.layer : undefined
  }
  async record(key: CacheKey, entry: CacheRecord): Promise<void> {
    this.#log.push(`record ${key.digest} ${entry.layer.digest}`)
    this.entries.set(key.digest, entry)
  }
}

describe('CacheBackend', () => {
  it('is asked for each layer step’s key before the step makes anything, and its hit is the step’s layer', async () => {
    const first = await solve(graph(), executors, ctxFor(await storeAt('a'), []))
    const layered = first.vertices.filter((v) => v.key !== undefined)
    expect(layered.map((v) => v.description)).toEqual([expect.stringContaining('COPY'), expect.stringContaining('WORKDIR'), expect.stringContaining('ADD')])

    // A fresh store whose cache answers from the first build's store, as a registry cache would.
    const fresh = await storeAt('b')
    const importer = new ImportingBackend(new Store(join(tmp, 'a')), fresh)
    const log: string[] = []
    const again = await solve(graph(), executors, ctxFor(fresh, log, { cache: importer }))

    expect(again.vertices.filter((v) => v.key).map((v) => [v.key, v.cached])).toEqual(layered.map((v) => [v.key, true]))
    expect(again.cacheHits).toBe(3)
    // Asked for every key, each time before the build had the layer's blob; nothing was written.
    expect(importer.asked).toEqual(layered.map((v) => ({ key: v.key, hadBlob: false })))
    expect(log).toEqual(layered.map((v) => `key ${v.key}`))
    expect(importer.recorded).toEqual([])
    expect(again.state.layers).toEqual(first.state.layers)
    // The store's own index was not written: the entries are the backend's to keep.
    for (const v of layered) expect(await fresh.cache.lookup(v.key!)).toBeUndefined()
  })

  it('records what a miss makes through the backend, after the key was reported and looked up', async () => {
    const store = await storeAt('s')
    const log: string[] = []
    const backend = new MemoryBackend(store, log)
    const first = await solve(graph(), executors, ctxFor(store, log, { cache: backend }))
    const layered = first.vertices.filter((v) => v.key !== undefined)
    expect(layered).toHaveLength(3)

    for (const [i, v] of layered.entries()) {
      const layer = first.state.layers[i]!
      const at = (prefix: string) => log.findIndex((l) => l.startsWith(`${prefix} `) && l.includes(v.key!))
      expect(at('key')).toBeGreaterThanOrEqual(0)
      expect(at('lookup')).toBeGreaterThan(at('key'))
      expect(at('record')).toBeGreaterThan(at('lookup'))
      // Looked up while the layer's blob was not yet in the store: the lookup came before the layer was made.
      expect(log[at('lookup')]).not.toContain(layer.digest)
      expect(log[at('record')]).toBe(`record ${v.key} ${layer.digest}`)
      expect(backend.entries.get(v.key!)).toMatchObject({ layer, keyDoc: v.keyDoc, description: v.description })
      expect(await store.cache.lookup(v.key!)).toBeUndefined()
    }
    // The same backend answers the next build of the same steps.
    const again = await solve(graph(), executors, ctxFor(store, [], { cache: backend }))
    expect(again.vertices.filter((v) => v.key).map((v) => [v.key, v.cached])).toEqual(layered.map((v) => [v.key, true]))
  })

  it('settles a step that can give its key first through the backend: a hit never calls make, exec is not used', async () => {
    const base: ImageState = { config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] }, layers: [], args: [], cmdSet: false }
    const layer = (name: string): LayerRef => ({ digest: `sha256:${name}` as Digest, diffId: `sha256:d${name}` as Digest, size: 1, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }) as LayerRef
    const made: string[] = []
    const vertex = (name: string, inputs: string[], kind: 'source' | 'run' = 'run'): AnyVertex => ({ id: `sha256:${name}` as Digest, kind, spec: {} as never, inputs: inputs.map((i) => `sha256:${i}` as Digest), meta: { description: name } })
    const table: ExecutorTable = {
      ...executors,
      source: { kind: 'source', exec: async () => ({ state: base, cached: false }) },
      run: {
        kind: 'run',
        exec: () => Promise.reject(new Error('exec called')),
        prepare: async (v, inputs) => ({
          keyDoc: { op: 'run', step: v.meta.description },
          make: async () => {
            made.push(v.meta.description)
            return layer(v.meta.description)
          },
          finish: (l) => ({ ...inputs[0]!, layers: [...inputs[0]!.layers, l] }),
        }),
      },
    }
    const answered = new Map<string, LayerRef>()
    const asked: string[] = []
    const backend: CacheBackend = {
      lookup: async (key) => {
        asked.push(String(key.doc['step']))
        return answered.get(String(key.doc['step']))
      },
      record: async () => {},
    }
    // The backend knows step one's key (an importer would); step two is made.
    answered.set('one', layer('imported'))
    const store = await storeAt('fake')
    const vertices = [vertex('base', [], 'source'), vertex('one', ['base']), vertex('two', ['one'])]
    const res = await solve({ vertices, outputs: [{ name: 'default', vertex: 'sha256:two' as Digest }] }, table, ctxFor(store, [], { cache: backend }))
    expect(asked).toEqual(['one', 'two'])
    expect(made).toEqual(['two'])
    expect(res.vertices.map((v) => [v.description, v.cached])).toEqual([['base', false], ['one', true], ['two', false]])
    expect(res.state.layers.map((l) => l.digest)).toEqual(['sha256:imported', 'sha256:two'])
  })
})
