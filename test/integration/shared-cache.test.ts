/**
 * The shared build cache (`cacheTo` / `cacheFrom`) against a real docker-registry on loopback, with
 * and without basic auth: a mode=max export imported by a build on an empty store hits every step
 * and gives the same digest; a local directory round trip (and its pruning); inline records through
 * a push; a changed context file rebuilds only the steps after it; a missing ref warns and builds; a
 * corrupted cache blob is refused when read (its steps rebuilt, or a typed error after the solve)
 * and never enters the store.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import type { BuildOptions, LocalBuildResult } from '../../src/pipeline/options.js'
import { startProxy, startTestRegistry, type TestRegistry } from '../helpers/registry.js'
import { storeProblems } from '../helpers/store-check.js'
import { Store } from '../../src/store/store.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['docker-registry', 'htpasswd', 'runc'])
const bin = join(resolve(__dirname, '../..'), 'bin', 'imagesmith.js')

describe.skipIf(bed.skip)('shared build cache', () => {
  let reg: TestRegistry
  let basic: TestRegistry
  let work: string
  let ctx: string
  let n = 0
  const store = () => join(work, `store-${++n}`)

  /** Two stages: `deps` is only copied from, so only mode=max exports its RUN. */
  const target = () => {
    const bb = `oci-archive:${busyboxArchive()}`
    const deps = image().from(bb).run('echo dep > /dep.txt')
    return image().from(bb).run('echo one > /one.txt').copy('a.txt', '/a.txt').run('cat /a.txt > /a-copy.txt').copy('/dep.txt', '/dep.txt', { from: deps })
  }
  const build = (opts: BuildOptions) => target().build({ context: ctx, ...opts }) as Promise<LocalBuildResult>
  const keyed = (r: LocalBuildResult) => r.vertices.filter((v) => v.key !== undefined)
  const step = (r: LocalBuildResult, text: string) => {
    const v = r.vertices.find((x) => x.description.includes(text))
    if (!v) throw new Error(`no step ${text} in ${r.vertices.map((x) => x.description).join(' | ')}`)
    return v
  }

  beforeAll(async () => {
    work = await tmpDir('ism-shared-cache-')
    ctx = join(work, 'ctx')
    spawnSync('mkdir', ['-p', ctx])
    writeFileSync(join(ctx, 'a.txt'), 'first\n')
    ;[reg, basic] = await Promise.all([startTestRegistry(), startTestRegistry({ auth: 'basic' })])
  })
  afterAll(async () => {
    await Promise.all([reg?.stop(), basic?.stop()])
    await cleanupTmpDirs()
  })

  for (const mode of ['none', 'basic'] as const) {
    it(`exports mode=max to a registry (${mode} auth); a build on an empty store importing it hits every step, same digest; a push mounts the hit layers`, async () => {
      const r = mode === 'none' ? reg : basic
      const registry: BuildOptions['registry'] = r.auth ? { auths: { [r.host]: r.auth } } : {}
      const ref = `${r.host}/app/cache:max`
      const cold = await build({ cacheDir: store(), registry, cacheTo: [{ type: 'registry', ref, mode: 'max' }] })
      expect(cold.cache!.warnings).toEqual([])
      expect(cold.cache!.exported).toEqual([{ type: 'registry', to: ref, digest: expect.stringMatching(/^sha256:/), records: keyed(cold).length }])

      const warm = await build({ cacheDir: store(), registry, cacheFrom: [{ type: 'registry', ref }], output: { type: 'registry' }, tags: [`${r.host}/app/image:1`] })
      expect(warm.cache!.warnings).toEqual([])
      for (const v of keyed(warm)) expect(v.cached, v.description).toBe(true)
      expect(warm.cache!.imported).toBe(keyed(warm).length)
      expect(warm.digest).toBe(cold.digest)
      // The final image's keyed layers are in the cache's repository: mounted, not uploaded again.
      expect(warm.pushed!.mounted).toBe(keyed(warm).length - 1)
    })
  }

  it('mode=min exports only what the final image holds: the deps stage RUN is rebuilt on import', async () => {
    const ref = `${reg.host}/app/cache:min`
    const cold = await build({ cacheDir: store(), cacheTo: [{ type: 'registry', ref }] })
    expect(cold.cache!.exported[0]!.records).toBe(keyed(cold).length - 1)
    const warm = await build({ cacheDir: store(), cacheFrom: [{ type: 'registry', ref }] })
    expect(step(warm, 'echo dep').cached).toBe(false)
    expect(step(warm, 'echo one').cached).toBe(true)
    expect(warm.digest).toBe(cold.digest)
  })

  it('a local directory round trip: an OCI layout tagged in index.json; a new export prunes blobs it no longer names', async () => {
    const dir = join(work, 'local-cache')
    const cold = await build({ cacheDir: store(), cacheTo: [{ type: 'local', dest: dir, mode: 'max' }] })
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] }
    expect(index.manifests).toHaveLength(1)
    expect(index.manifests[0]!.annotations['org.opencontainers.image.ref.name']).toBe('latest')
    expect(index.manifests[0]!.digest).toBe(cold.cache!.exported[0]!.digest)
    const warm = await build({ cacheDir: store(), cacheFrom: [{ type: 'local', src: dir }] })
    for (const v of keyed(warm)) expect(v.cached, v.description).toBe(true)
    expect(warm.digest).toBe(cold.digest)

    const before = new Set(readdirSync(join(dir, 'blobs', 'sha256')))
    writeFileSync(join(ctx, 'a.txt'), 'pruned\n')
    try {
      const changed = await build({ cacheDir: store(), cacheFrom: [{ type: 'local', src: dir }], cacheTo: [{ type: 'local', dest: dir, mode: 'max' }] })
      const after = new Set(readdirSync(join(dir, 'blobs', 'sha256')))
      const expected = new Set([changed.cache!.exported[0]!.digest!.slice(7)])
      const manifest = JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', [...expected][0]!), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] }
      expected.add(manifest.config.digest.slice(7))
      for (const l of manifest.layers) expected.add(l.digest.slice(7))
      expect(after).toEqual(expected)
      expect([...before].filter((b) => !after.has(b)).length).toBeGreaterThan(0)
    } finally {
      writeFileSync(join(ctx, 'a.txt'), 'first\n')
    }
  })

  it('inline: the records ride in the pushed image config, and a cacheFrom of the image reads them', async () => {
    const tag = `${reg.host}/app/inline:1`
    const single = () => image().from(`oci-archive:${busyboxArchive()}`).run('echo inline > /i.txt').copy('a.txt', '/a.txt')
    const plain = `${reg.host}/app/plain:1`
    await single().build({ context: ctx, cacheDir: store(), output: { type: 'registry' }, tags: [plain] })
    const none = await single().build({ context: ctx, cacheDir: store(), cacheFrom: [{ type: 'registry', ref: plain }] })
    expect(none.cache!.warnings).toEqual([expect.stringContaining(`cache type=registry,ref=${plain} is an image without inline cache records`)])
    const pushed = await single().build({ context: ctx, cacheDir: store(), output: { type: 'registry' }, tags: [tag], cacheTo: [{ type: 'inline' }] })
    expect((pushed.config as unknown as Record<string, { records: unknown[] }>)['imagesmith.cache.v1']!.records).toHaveLength(2)
    const warm = await single().build({ context: ctx, cacheDir: store(), cacheFrom: [{ type: 'registry', ref: tag }], cacheTo: [{ type: 'inline' }] })
    expect(warm.cache!.warnings).toEqual([])
    for (const v of keyed(warm)) expect(v.cached, v.description).toBe(true)
    expect(warm.digest).toBe(pushed.digest)
  })

  it('one changed context file rebuilds only the steps after it; the rest hit the imported cache', async () => {
    const ref = `${reg.host}/app/cache:change`
    await build({ cacheDir: store(), cacheTo: [{ type: 'registry', ref, mode: 'max' }] })
    writeFileSync(join(ctx, 'a.txt'), 'second\n')
    try {
      const r = await build({ cacheDir: store(), cacheFrom: [{ type: 'registry', ref }] })
      expect(step(r, 'echo dep').cached).toBe(true)
      expect(step(r, 'echo one').cached).toBe(true)
      expect(step(r, 'a.txt /a.txt').cached).toBe(false)
      expect(step(r, 'cat /a.txt').cached).toBe(false)
      // A COPY's layer holds only what it copies, so its key does not change with the steps before it.
      expect(step(r, '/dep.txt').cached).toBe(true)
    } finally {
      writeFileSync(join(ctx, 'a.txt'), 'first\n')
    }
  })

  it('an import reads the manifest and config only: a build whose keys the cache lacks fetches no layer blob', async () => {
    const ref = `app/cache:unread`
    const cold = await build({ cacheDir: store(), cacheTo: [{ type: 'registry', ref: `${reg.host}/${ref}`, mode: 'max' }] })
    const manifest = (await (await fetch(`${reg.url}/v2/app/cache/manifests/${cold.cache!.exported[0]!.digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { config: { digest: string } }
    const proxy = await startProxy(reg.host)
    try {
      const other = await image().from(`oci-archive:${busyboxArchive()}`).run('echo other > /other.txt').build({ context: ctx, cacheDir: store(), cacheFrom: [{ type: 'registry', ref: `${proxy.host}/${ref}` }] })
      expect(other.cache!.warnings).toEqual([])
      expect(other.cache!.imported).toBe(0)
      const gets = proxy.requests.filter((q) => q.method === 'GET' && q.path.startsWith('/v2/app/cache/')).map((q) => q.path)
      expect(gets).toEqual(['/v2/app/cache/manifests/unread', `/v2/app/cache/blobs/${manifest.config.digest}`])
    } finally {
      await proxy.stop()
    }
  })

  it('a cache ref that does not exist is a warning, and the build goes on cold', async () => {
    const ref = `${reg.host}/app/cache:missing`
    const r = await build({ cacheDir: store(), cacheFrom: [{ type: 'registry', ref }, { type: 'local', src: join(work, 'no-such-dir') }] })
    expect(r.cache!.warnings).toEqual([expect.stringContaining(`type=registry,ref=${ref} not imported`), expect.stringContaining('no-such-dir')])
    for (const v of keyed(r)) expect(v.cached, v.description).toBe(false)
    // The CLI says so on stderr and exits 0.
    const script = join(work, 'missing.ts')
    writeFileSync(script, `import { image } from ${JSON.stringify(join(resolve(__dirname, '../..'), 'src', 'index.ts'))}\nexport default image().from(${JSON.stringify(`oci-archive:${busyboxArchive()}`)}).copy('a.txt', '/a.txt')\n`)
    const cli = spawnSync(process.execPath, [bin, 'build', script, '--context', ctx, '--progress', 'quiet', '--cache-dir', store(), '--cache-from', ref], { encoding: 'utf8', timeout: 300_000 })
    expect(cli.status, cli.stderr).toBe(0)
    expect(cli.stderr).toContain(`warning: cache type=registry,ref=${ref} not imported`)
  })

  it('an export the registry refuses is a warning: the result stands and the image is named in the store', async () => {
    const root = store()
    // The basic-auth registry without credentials: every push is refused (401).
    const ref = `${basic.host}/app/cache:refused`
    const r = await build({ cacheDir: root, tags: ['refused-export:1'], cacheTo: [{ type: 'registry', ref, mode: 'max' }] })
    expect(r.cache!.exported).toEqual([])
    expect(r.cache!.warnings).toEqual([expect.stringMatching(new RegExp(`^cache export type=registry,ref=${ref} failed: .*401`))])
    expect((await new Store(root).images.get('docker.io/library/refused-export:1'))?.digest).toBe(r.digest)
  })

  it('a cache blob whose bytes do not match its digest is refused when read: the steps it answered are rebuilt, a push elsewhere fails naming it, nothing bad enters the store', async () => {
    const ref = `${reg.host}/app/cache:corrupt`
    const cold = await build({ cacheDir: store(), cacheTo: [{ type: 'registry', ref, mode: 'max' }] })
    const manifest = (await (await fetch(`${reg.url}/v2/app/cache/manifests/${cold.cache!.exported[0]!.digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { config: { digest: string }; layers: { digest: string }[] }
    // Layer blobs only: the manifest and config arrive intact, every layer is flipped on the way.
    const proxy = await startProxy(reg.host, { corrupt: true, paths: new RegExp(`/blobs/sha256:(?!${manifest.config.digest.slice(7)})`) })
    const name = `type=registry,ref=${proxy.host}/app/cache:corrupt`
    const warning = new RegExp(`^cache ${name}: layer (sha256:[a-f0-9]{64}) refused \\(.*does not match.*nothing was stored\\); the step is rebuilt$`)
    try {
      // An archive reads every layer of the image: each is refused as it is read and its step
      // rebuilt (a plain COPY's key reads the layers below it, so most are read in the solve).
      const root = store()
      const dest = join(work, 'corrupt.tar')
      const r = await build({ cacheDir: root, cacheFrom: [{ type: 'registry', ref: `${proxy.host}/app/cache:corrupt` }], output: { type: 'oci', dest } })
      const refused = r.cache!.warnings.map((w) => warning.exec(w)?.[1])
      expect(refused).not.toContain(undefined)
      // Each refused once, and only layers of the cache. Which are read first depends on the
      // schedule: a layer rebuilt because one below it was refused is never fetched.
      expect(new Set(refused).size).toBe(refused.length)
      for (const d of refused) expect(manifest.layers.map((l) => l.digest)).toContain(d)
      expect(refused.length).toBeGreaterThan(0)
      // The archive read every layer of the image: none is an imported hit any more (a step rebuilt
      // in one solve hits the store in the next). The deps stage's RUN is read only if the COPY
      // --from it was rebuilt.
      expect(r.cache!.imported).toBeLessThanOrEqual(1)
      for (const l of r.layers) expect(existsSync(join(root, 'blobs', 'sha256', l.digest.slice(7))), l.digest).toBe(true)
      // (RUN layers are rebuilt with their files' own mtimes here: not the cold digest.)
      expect(existsSync(dest)).toBe(true)
      expect(storeProblems(root)).toEqual([])

      // A push to another registry reads a hit layer only to upload it: after the solve, so the
      // build fails with a typed error naming the layer and the cache; nothing of it is stored.
      const other = store()
      const err = (await build({ cacheDir: other, cacheFrom: [{ type: 'registry', ref: `${proxy.host}/app/cache:corrupt` }], output: { type: 'registry' }, tags: [`${basic.host}/app/corrupt:1`], registry: { auths: { [basic.host]: basic.auth! } } }).then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string; details?: { digest?: string; source?: string } } | undefined
      expect(err).toMatchObject({ code: 'BLOB_CORRUPT', details: { source: name } })
      expect(cold.layers.map((l) => l.digest)).toContain(err!.details!.digest)
      expect(existsSync(join(other, 'blobs', 'sha256', err!.details!.digest!.slice(7)))).toBe(false)
      expect(storeProblems(other)).toEqual([])
    } finally {
      await proxy.stop()
    }
  })
})
