/**
 * The shared build cache imports lazily, against a real docker-registry on loopback behind a
 * counting proxy: a hit records where its layer is, and the blob is fetched only when something
 * reads it. An all-hit build pushed to the cache's registry downloads no layer (mounted, or skipped
 * when the target has it), pushed elsewhere it fetches each once; an OCI archive fetches exactly the
 * layers it writes; a later step that misses fetches the snapshots it stands on; an image named in
 * the store with remote layers is saved and built on; a killed fetch leaves nothing in the store.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import type { BuildOptions, LocalBuildResult } from '../../src/pipeline/options.js'
import { Store } from '../../src/store/store.js'
import { startProxy, startTestRegistry, type TestProxy, type TestRegistry } from '../helpers/registry.js'
import { storeProblems } from '../helpers/store-check.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'
import type { Digest } from '../../src/oci/media-types.js'

const bed = requireTools(['docker-registry', 'runc'])
const execFileAsync = promisify(execFile)
const bin = join(resolve(__dirname, '../..'), 'bin', 'imagesmith.js')

describe.skipIf(bed.skip)('shared build cache: lazy import', () => {
  let reg: TestRegistry
  let work: string
  let ctx: string
  let n = 0
  const store = () => join(work, `store-${++n}`)
  const keyed = (r: LocalBuildResult) => r.vertices.filter((v) => v.key !== undefined)
  const step = (r: LocalBuildResult, text: string) => r.vertices.find((x) => x.description.includes(text))!
  const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
  /** Layer blobs GET from the proxy (HEADs and the cache's config excluded), in order. */
  const layerGets = (proxy: TestProxy, layers: ReadonlySet<string>) =>
    proxy.requests.filter((q) => q.method === 'GET').map((q) => /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(q.path)?.[1]).filter((d): d is string => d !== undefined && layers.has(d))
  const blobsIn = (root: string) => new Set(readdirSync(join(root, 'blobs', 'sha256')).map((h) => `sha256:${h}`))

  const bb = () => `oci-archive:${busyboxArchive()}`
  /**
   * One stage: every keyed layer is in the final image. A plain COPY's key covers its destination
   * as the image below resolves it (symlinks, existing dirs), so keying it reads the layers below
   * (fetching them); a COPY --link's does not.
   */
  const single = (link = false) => image().from(bb()).run('echo one > /one.txt').copy('a.txt', '/a.txt', { link }).run('cat /a.txt > /a-copy.txt')
  /** Two stages: `deps` is only copied from. `again` adds a step the cache lacks that copies from it. */
  const multi = (again = false) => {
    const deps = image().from(bb()).run('echo dep > /dep.txt')
    const out = single().copy('/dep.txt', '/dep.txt', { from: deps })
    return again ? out.copy('/dep.txt', '/again/dep.txt', { from: deps, link: true }) : out
  }
  const common: BuildOptions = { sourceDateEpoch: 0 }
  const built = (target: ReturnType<typeof single>, opts: BuildOptions) => target.build(opts) as Promise<LocalBuildResult>

  /** The layers of a cache manifest in the registry (every record's blob). */
  const cacheLayers = async (repo: string, digest: string) => {
    const m = (await (await fetch(`${reg.url}/v2/${repo}/manifests/${digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { layers: { digest: string }[] }
    return new Set(m.layers.map((l) => l.digest))
  }

  beforeAll(async () => {
    work = await tmpDir('ism-shared-cache-lazy-')
    ctx = join(work, 'ctx')
    await import('node:fs/promises').then((f) => f.mkdir(ctx, { recursive: true }))
    writeFileSync(join(ctx, 'a.txt'), 'first\n')
    reg = await startTestRegistry()
  })
  afterAll(async () => {
    await reg?.stop()
    await cleanupTmpDirs()
  })

  it('an all-hit import on an empty store pushed to the cache registry downloads no layer blob: each is mounted, or skipped when the target has it', async () => {
    const cold = await built(single(true), { ...common, context: ctx, cacheDir: store(), cacheTo: [{ type: 'registry', ref: `${reg.host}/lazy/cache:push`, mode: 'max' }] })
    const layers = await cacheLayers('lazy/cache', cold.cache!.exported[0]!.digest!)
    expect(layers.size).toBe(keyed(cold).length)
    const proxy = await startProxy(reg.host)
    try {
      const root = store()
      const opts: BuildOptions = { ...common, context: ctx, cacheFrom: [{ type: 'registry', ref: `${proxy.host}/lazy/cache:push` }], output: { type: 'registry' }, tags: [`${proxy.host}/lazy/app:1`] }
      const warm = (await single(true).build({ ...opts, cacheDir: root })) as LocalBuildResult
      expect(warm.cache!.warnings).toEqual([])
      for (const v of keyed(warm)) expect(v.cached, v.description).toBe(true)
      expect(warm.digest).toBe(cold.digest)
      expect(warm.pushed!.mounted).toBe(layers.size)
      expect(layerGets(proxy, layers)).toEqual([])
      // The hit layers stay remote: named in the store's records, not in its blobs.
      for (const d of layers) expect(blobsIn(root).has(d), d).toBe(false)
      const records = new Store(root).blobs.remote
      for (const d of layers) expect((await records.get(d as Digest))?.source, d).toEqual({ type: 'registry', registry: proxy.host, repository: 'lazy/cache', ref: `type=registry,ref=${proxy.host}/lazy/cache:push` })

      // Again on another empty store: the target repository has every layer now (HEAD), still no GET.
      const again = (await single(true).build({ ...opts, cacheDir: store() })) as LocalBuildResult
      expect(again.pushed!.skipped).toBeGreaterThanOrEqual(layers.size)
      expect(again.pushed!.mounted).toBe(0)
      expect(layerGets(proxy, layers)).toEqual([])
    } finally {
      await proxy.stop()
    }
  })

  it('a push to another registry fetches each hit layer once, verified, and uploads it', async () => {
    const cold = await built(single(true), { ...common, context: ctx, cacheDir: store(), cacheTo: [{ type: 'registry', ref: `${reg.host}/lazy/cache:elsewhere`, mode: 'max' }] })
    const layers = await cacheLayers('lazy/cache', cold.cache!.exported[0]!.digest!)
    const [proxy, other] = await Promise.all([startProxy(reg.host), startTestRegistry()])
    try {
      const root = store()
      const r = await built(single(true), { ...common, context: ctx, cacheDir: root, cacheFrom: [{ type: 'registry', ref: `${proxy.host}/lazy/cache:elsewhere` }], output: { type: 'registry' }, tags: [`${other.host}/lazy/app:1`] })
      expect(r.digest).toBe(cold.digest)
      expect(r.pushed!.mounted).toBe(0)
      expect(r.pushed!.blobs).toBeGreaterThanOrEqual(layers.size)
      expect([...layerGets(proxy, layers)].sort()).toEqual([...layers].sort())
      expect(storeProblems(root)).toEqual([])
    } finally {
      await Promise.all([proxy.stop(), other.stop()])
    }
  })

  it('an OCI archive of an all-hit build fetches exactly the layers it writes, once each, and is the cold build\'s archive byte for byte', async () => {
    const coldTar = join(work, 'cold.tar')
    const cold = await built(single(), { ...common, context: ctx, cacheDir: store(), output: { type: 'oci', dest: coldTar }, cacheTo: [{ type: 'registry', ref: `${reg.host}/lazy/cache:oci`, mode: 'max' }] })
    const layers = await cacheLayers('lazy/cache', cold.cache!.exported[0]!.digest!)
    const proxy = await startProxy(reg.host)
    try {
      const root = store()
      const warmTar = join(work, 'warm.tar')
      const warm = (await single().build({ ...common, context: ctx, cacheDir: root, output: { type: 'oci', dest: warmTar }, cacheFrom: [{ type: 'registry', ref: `${proxy.host}/lazy/cache:oci` }] })) as LocalBuildResult
      for (const v of keyed(warm)) expect(v.cached, v.description).toBe(true)
      expect([...layerGets(proxy, layers)].sort()).toEqual([...layers].sort())
      expect(sha(warmTar)).toBe(sha(coldTar))
      // Fetched for the archive, so now held, verified, and their remote records gone.
      for (const d of layers) expect(blobsIn(root).has(d), d).toBe(true)
      expect(existsSync(join(root, 'remote')) ? readdirSync(join(root, 'remote')).filter((f) => f.endsWith('.json')) : []).toEqual([])
      expect(storeProblems(root)).toEqual([])
    } finally {
      await proxy.stop()
    }
  })

  it('mode=max: steps that miss fetch the hit snapshots they stand on or copy from (a RUN its parent\'s, a COPY --from its stage\'s), nothing else', async () => {
    const ref = 'lazy/cache:max'
    const cold = (await multi().build({ ...common, context: ctx, cacheDir: store(), cacheTo: [{ type: 'registry', ref: `${reg.host}/${ref}`, mode: 'max' }] })) as LocalBuildResult
    const layers = await cacheLayers('lazy/cache', cold.cache!.exported[0]!.digest!)
    const [, one, , , dep] = cold.layers.map((l) => l.digest)
    const depsRun = [...layers].filter((d) => !cold.layers.some((l) => l.digest === d))
    expect(depsRun).toHaveLength(1)
    writeFileSync(join(ctx, 'a.txt'), 'changed\n')
    const proxy = await startProxy(reg.host)
    try {
      const root = store()
      const r = (await multi(true).build({ ...common, context: ctx, cacheDir: root, cacheFrom: [{ type: 'registry', ref: `${proxy.host}/${ref}` }] })) as LocalBuildResult
      expect(r.cache!.warnings).toEqual([])
      expect(step(r, 'echo one').cached).toBe(true)
      expect(step(r, 'a.txt /a.txt').cached).toBe(false)
      expect(step(r, 'cat /a.txt').cached).toBe(false)
      expect(step(r, '/dep.txt /dep.txt').cached).toBe(true)
      expect(step(r, '/again/dep.txt').cached).toBe(false)
      // `cat` runs on `echo one`'s snapshot; the new COPY --from reads the deps stage's. The hit
      // COPY --from is keyed by the deps stage's diff IDs: its layer stays remote.
      expect([...layerGets(proxy, layers)].sort()).toEqual([one!, depsRun[0]!].sort())
      expect(blobsIn(root).has(dep!)).toBe(false)
      expect(storeProblems(root)).toEqual([])
    } finally {
      writeFileSync(join(ctx, 'a.txt'), 'first\n')
      await proxy.stop()
    }
  })

  it('an image named in the store whose layers are still remote: `imagesmith save` fetches them through the recorded cache, and a later build stands on it', async () => {
    const cold = await built(single(true), { ...common, context: ctx, cacheDir: store(), cacheTo: [{ type: 'registry', ref: `${reg.host}/lazy/cache:named`, mode: 'max' }] })
    const layers = await cacheLayers('lazy/cache', cold.cache!.exported[0]!.digest!)
    const proxy = await startProxy(reg.host)
    try {
      const root = store()
      const named = await built(single(true), { ...common, context: ctx, cacheDir: root, tags: ['lazy-named:1'], cacheFrom: [{ type: 'registry', ref: `${proxy.host}/lazy/cache:named` }] })
      expect(named.digest).toBe(cold.digest)
      expect(layerGets(proxy, layers)).toEqual([])
      const saved = join(work, 'saved.tar')
      // Not spawnSync: the proxy runs in this process and must answer the CLI's requests.
      const cli = await execFileAsync(process.execPath, [bin, 'save', 'lazy-named:1', '-o', saved, '--cache-dir', root], { encoding: 'utf8', timeout: 120_000 })
      expect(existsSync(saved), cli.stderr).toBe(true)
      expect([...layerGets(proxy, layers)].sort()).toEqual([...layers].sort())
      // Another build, no cacheFrom: its FROM is the local name, its RUN on every layer (now here).
      const later = (await image().from('lazy-named:1').run('cat /one.txt /a-copy.txt > /both.txt').build({ ...common, context: ctx, cacheDir: root })) as LocalBuildResult
      expect(later.layers.slice(0, -1).map((l) => l.digest)).toEqual(cold.layers.map((l) => l.digest))
      expect(layerGets(proxy, layers)).toHaveLength(layers.size)
      expect(storeProblems(root)).toEqual([])
    } finally {
      await proxy.stop()
    }
  })

  it('a fetch killed mid-blob leaves no partial blob and no output; the layer stays fetchable, and the next export writes it', async () => {
    const cold = await built(single(true), { ...common, context: ctx, cacheDir: store(), cacheTo: [{ type: 'registry', ref: `${reg.host}/lazy/cache:cut`, mode: 'max' }] })
    const layers = await cacheLayers('lazy/cache', cold.cache!.exported[0]!.digest!)
    const proxy = await startProxy(reg.host, { paths: new RegExp(`/blobs/(${[...layers].join('|')})$`), dropAfterBytes: 10 })
    // The build is aborted the moment the proxy cuts the first layer (10 bytes in): mid-fetch.
    const ac = new AbortController()
    let cut = 0
    Object.defineProperty(proxy, 'dropped', { get: () => cut, set: (v: number) => { cut = v; ac.abort() }, configurable: true })
    try {
      const root = store()
      const opts: BuildOptions = { ...common, context: ctx, cacheDir: root, cacheFrom: [{ type: 'registry', ref: `${proxy.host}/lazy/cache:cut` }] }
      const dest = join(work, 'cut.tar')
      await expect(single(true).build({ ...opts, output: { type: 'oci', dest }, signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' })
      expect(cut).toBe(1)
      expect(existsSync(dest)).toBe(false)
      for (const d of layers) expect(blobsIn(root).has(d), d).toBe(false)
      expect(readdirSync(join(root, 'tmp')).filter((f) => f.startsWith('blob'))).toEqual([])
      expect(storeProblems(root)).toEqual([])
      // The remote records stay: the same store writes the archive once the fetch can finish.
      const r = (await single(true).build({ ...opts, output: { type: 'oci', dest } })) as LocalBuildResult
      expect(r.digest).toBe(cold.digest)
      expect(existsSync(dest)).toBe(true)
      for (const d of layers) expect(blobsIn(root).has(d), d).toBe(true)
    } finally {
      await proxy.stop()
    }
  })
})
