/**
 * Features used together, as users and acceptance checks do: two processes importing one lazy
 * registry cache into one empty store at once; a bake interrupted with SIGINT mid-RUN; `cache prune`
 * after (and `cache prune --all` during) a lazily imported build whose layers are still remote;
 * `inspect --layers` and `diff` of such an image; SBOMs of such builds (layers fetched, a corrupt one
 * refused); a push whose cache registry fails after the solve; and attestations with zstd layers and
 * a passing budget pushed to a registry, then pulled and run by podman.
 */
import { execFile, execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import type { LocalBuildResult } from '../../src/pipeline/options.js'
import { Store } from '../../src/store/store.js'
import type { Digest } from '../../src/oci/media-types.js'
import { startProxy, startTestRegistry, type TestRegistry } from '../helpers/registry.js'
import { storeProblems } from '../helpers/store-check.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { createPodmanStore, requireTools, runTool } from '../helpers/tools.js'
import { sleepersUnder } from '../helpers/processes.js'

const bed = requireTools(['docker-registry', 'runc', 'skopeo', 'podman'])
const execFileAsync = promisify(execFile)
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const api = join(root, 'src', 'index.ts')

function cli(args: string[], cache: string, cwd: string) {
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, IMAGESMITH_CACHE: cache, SOURCE_DATE_EPOCH: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((res) => child.on('exit', (code, signal) => res({ code, signal, stdout, stderr })))
  return { child, done, stderr: () => stderr }
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
const blobsIn = (store: string) => (existsSync(join(store, 'blobs', 'sha256')) ? readdirSync(join(store, 'blobs', 'sha256')) : [])

describe.skipIf(bed.skip)('features combined', () => {
  let reg: TestRegistry
  let work: string
  let ctx: string
  let scriptPath: string
  const bb = () => `oci-archive:${busyboxArchive()}`
  const app = () => image().from(bb()).run('echo one > /one.txt').copy('a.txt', '/a.txt', { link: true }).run('cat /a.txt > /a-copy.txt')

  const cacheLayers = async (repo: string, digest: string) => {
    const m = (await (await fetch(`${reg.url}/v2/${repo}/manifests/${digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { layers: { digest: string }[] }
    return new Set(m.layers.map((l) => l.digest))
  }

  beforeAll(async () => {
    work = await tmpDir('ism-combined-')
    ctx = join(work, 'ctx')
    mkdirSync(ctx, { recursive: true })
    writeFileSync(join(ctx, 'a.txt'), 'first\n')
    scriptPath = join(work, 'build.ts')
    writeFileSync(
      scriptPath,
      `import { image } from ${JSON.stringify(api)}
export default image().from(${JSON.stringify(bb())}).run('echo one > /one.txt').copy('a.txt', '/a.txt', { link: true }).run('cat /a.txt > /a-copy.txt')
`,
    )
    reg = await startTestRegistry()
  })
  afterAll(async () => {
    await reg?.stop()
    await cleanupTmpDirs()
  })

  it('two processes importing one registry cache (all hits) into one empty store at once both write the same archive; each layer blob lands once, verified; no temp is left', async () => {
    const ref = `${reg.host}/combo/cache:conc`
    const cold = (await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: join(work, 'cold-1'), cacheTo: [{ type: 'registry', ref, mode: 'max' }] })) as LocalBuildResult
    const layers = await cacheLayers('combo/cache', cold.cache!.exported[0]!.digest!)
    const store = join(work, 'shared-1')
    const runs = [0, 1].map((i) =>
      cli(['build', scriptPath, '--context', ctx, '--cache-from', `type=registry,ref=${ref}`, '-o', `type=oci,dest=${join(work, `conc-${i}.tar`)}`, '--progress', 'quiet'], store, work),
    )
    const results = await Promise.all(runs.map((r) => r.done))
    for (const r of results) expect(r.code, r.stderr).toBe(0)
    expect(results[0]!.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/)
    expect(results[1]!.stdout.trim()).toBe(results[0]!.stdout.trim())
    expect(results[0]!.stdout.trim()).toBe(cold.digest)
    expect(sha(join(work, 'conc-1.tar'))).toBe(sha(join(work, 'conc-0.tar')))
    const here = blobsIn(store)
    for (const d of layers) expect(here.filter((h) => h === d.slice(7)), d).toHaveLength(1)
    expect(storeProblems(store)).toEqual([])
    expect(readdirSync(join(store, 'tmp'))).toEqual([])
    expect(blobsIn(store).filter((n) => !/^[a-f0-9]{64}$/.test(n))).toEqual([])
  })

  it('a bake with --out-dir interrupted by SIGINT while a target runs exits at once with 130; the archives of the run before stay whole; a re-run on the same store completes', async () => {
    const dir = join(work, 'bake')
    mkdirSync(dir, { recursive: true })
    const script = (slow: string) =>
      writeFileSync(
        join(dir, 'bake.ts'),
        `import { image } from ${JSON.stringify(api)}
const base = image().from(${JSON.stringify(bb())}).run('echo base > /base.txt')
export const quick = base.run('echo quick > /quick.txt')
export const slow = base.run(${JSON.stringify(`echo slow-started; ${slow}`)})
export const other = base.run('echo other > /other.txt')
export default { quick, slow, other }
`,
      )
    const store = join(work, 'bake-store')
    const outDir = join(dir, 'out')
    const names = ['other.tar', 'quick.tar', 'slow.tar']
    const hashes = () => Object.fromEntries(readdirSync(outDir).sort().map((f) => [f, sha(join(outDir, f))]))
    script('true')
    const first = await cli(['bake', 'bake.ts', '--out-dir', outDir, '--progress', 'quiet'], store, dir).done
    expect(first.code, first.stderr).toBe(0)
    expect(readdirSync(outDir).sort()).toEqual(names)
    const before = hashes()

    script('sleep 30')
    const victim = cli(['bake', 'bake.ts', '--out-dir', outDir, '--progress', 'plain'], store, dir)
    await new Promise<void>((res, rej) => {
      const poll = setInterval(() => {
        if (victim.stderr().includes('slow-started')) {
          clearInterval(poll)
          res()
        }
      }, 10)
      void victim.done.then((r) => {
        clearInterval(poll)
        rej(new Error(`bake ended before the slow target started: ${r.code}\n${r.stderr}`))
      })
    })
    const sent = Date.now()
    victim.child.kill('SIGINT')
    const r = await victim.done
    expect(Date.now() - sent).toBeLessThan(5_000)
    expect(r.code, r.stderr).toBe(130)
    expect(r.stderr).toMatch(/^error \[ABORTED\]/m)
    expect(sleepersUnder(store, '30')).toEqual([])
    // No temp, no half file: exactly the archives of the run before, byte for byte.
    expect(hashes()).toEqual(before)
    for (const f of names) {
      const index = JSON.parse((await runTool('tar', ['-xOf', join(outDir, f), 'index.json'])).stdout) as { manifests: unknown[] }
      expect(index.manifests).toHaveLength(1)
    }
    expect(storeProblems(store)).toEqual([])

    script('true')
    const again = await cli(['bake', 'bake.ts', '--out-dir', outDir, '--progress', 'quiet'], store, dir).done
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toBe(first.stdout)
    expect(hashes()).toEqual(before)
    expect(storeProblems(store)).toEqual([])
  })

  it('`cache prune` after an all-hit build named an image whose layers are still remote keeps what the name needs; `imagesmith save NAME` then writes it', async () => {
    const ref = `${reg.host}/combo/cache:prune`
    const cold = (await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: join(work, 'cold-2'), output: { type: 'oci', dest: join(work, 'cold-2.tar') }, cacheTo: [{ type: 'registry', ref, mode: 'max' }] })) as LocalBuildResult
    const layers = await cacheLayers('combo/cache', cold.cache!.exported[0]!.digest!)
    const store = join(work, 'prune-store')
    const named = (await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: store, tags: ['combo-named:1'], cacheFrom: [{ type: 'registry', ref }] })) as LocalBuildResult
    expect(named.digest).toBe(cold.digest)
    const records = new Store(store).blobs.remote
    for (const d of layers) expect(await records.get(d as Digest), d).toBeDefined()

    const pruned = await execFileAsync(process.execPath, [bin, 'cache', 'prune', '--cache-dir', store], { encoding: 'utf8', timeout: 120_000 })
    expect(pruned.stdout).not.toMatch(/^Untagged: /m)
    for (const d of layers) expect(await new Store(store).blobs.remote.get(d as Digest), d).toBeDefined()

    const saved = join(work, 'prune-saved.tar')
    const r = await execFileAsync(process.execPath, [bin, 'save', 'combo-named:1', '-o', saved, '--cache-dir', store], { encoding: 'utf8', timeout: 120_000 })
    expect(existsSync(saved), r.stderr).toBe(true)
    // The saved archive holds every layer of the image, each hashing to its name.
    const out = join(work, 'prune-saved')
    mkdirSync(out)
    await runTool('tar', ['-xf', saved, '-C', out])
    for (const l of cold.layers) expect(sha(join(out, 'blobs', 'sha256', l.digest.slice(7))), l.digest).toBe(l.digest.slice(7))
    expect(storeProblems(store)).toEqual([])
  })

  it('`cache prune --all` run while a lazily imported build is between its solve and its export removes nothing the build holds: its zstd archive is written, and the named image saves', async () => {
    const ref = `${reg.host}/combo/cache:midprune`
    const coldTar = join(work, 'midprune-cold.tar')
    await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: join(work, 'cold-7'), tags: ['combo-midprune:1'], output: { type: 'oci', dest: coldTar, compression: 'zstd' }, cacheTo: [{ type: 'registry', ref, mode: 'max' }] })
    const store = join(work, 'midprune-store')
    const dest = join(work, 'midprune.tar')
    let pruned: string | undefined
    const r = (await app().build({
      sourceDateEpoch: 0,
      context: ctx,
      cacheDir: store,
      cacheFrom: [{ type: 'registry', ref }],
      tags: ['combo-midprune:1'],
      output: { type: 'oci', dest, compression: 'zstd' },
      // The last step done, the solve is over: the prune runs to its end while this build waits (a
      // synchronous child blocks this process), so it lands exactly between solve and export.
      onProgress: (e) => {
        if (pruned === undefined && e.type === 'done' && e.description.includes('cat /a.txt')) {
          pruned = execFileSync(process.execPath, [bin, 'cache', 'prune', '--all', '--cache-dir', store], { encoding: 'utf8', timeout: 60_000 })
        }
      },
    })) as LocalBuildResult
    expect(pruned).toMatch(/^Total reclaimed space: /m)
    expect(pruned!.split('\n').filter((l) => /^(Deleted|Untagged)/.test(l))).toEqual([])
    expect(sha(dest)).toBe(sha(coldTar))
    const saved = join(work, 'midprune-saved.tar')
    const s = await execFileAsync(process.execPath, [bin, 'save', 'combo-midprune:1', '-o', saved, '--cache-dir', store], { encoding: 'utf8', timeout: 120_000 })
    // The store names the gzip image (zstd is the output's); the name's layers are the zstd ones' diffIDs.
    expect(s.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/)
    const index = JSON.parse((await runTool('tar', ['-xOf', saved, 'index.json'])).stdout) as { manifests: { digest: string }[] }
    const manifest = JSON.parse((await runTool('tar', ['-xOf', saved, `blobs/sha256/${index.manifests[0]!.digest.slice(7)}`])).stdout) as { config: { digest: string } }
    expect(manifest.config.digest).toBe(r.configDigest)
    expect(storeProblems(store)).toEqual([])
    // Once the build is over, the same prune has plenty to remove.
    const after = execFileSync(process.execPath, [bin, 'cache', 'prune', '--all', '--cache-dir', store], { encoding: 'utf8', timeout: 60_000 })
    expect(after).toMatch(/^Untagged: .*combo-midprune:1$/m)
    expect(after).toMatch(/^Deleted cache-entry /m)
  })

  it('`inspect --layers` and `diff` of a named image whose layers are still remote fetch them through the recorded cache', async () => {
    const ref = `${reg.host}/combo/cache:insight`
    const cold = (await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: join(work, 'cold-5'), cacheTo: [{ type: 'registry', ref, mode: 'max' }] })) as LocalBuildResult
    const store = join(work, 'insight-store')
    await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: store, tags: ['combo-insight:1'], cacheFrom: [{ type: 'registry', ref }] })
    const remote = new Store(store).blobs.remote
    for (const l of cold.layers.slice(1)) expect(await remote.get(l.digest as Digest), l.digest).toBeDefined()
    const r = await execFileAsync(process.execPath, [bin, 'inspect', 'combo-insight:1', '--layers', '--json', '--cache-dir', store], { encoding: 'utf8', timeout: 120_000 }).catch((e: { stderr: string }) => ({ stdout: '', stderr: e.stderr }))
    expect(r.stderr).toBe('')
    const [report] = JSON.parse(r.stdout) as { manifestDigest: string; layers: unknown[] }[]
    expect(report!.manifestDigest).toBe(cold.digest)
    expect(report!.layers).toHaveLength(cold.layers.length)
    for (const l of cold.layers) expect(blobsIn(store), l.digest).toContain(l.digest.slice(7))
    expect(storeProblems(store)).toEqual([])

    const other = join(work, 'diff-store')
    await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: other, tags: ['combo-insight:1'], cacheFrom: [{ type: 'registry', ref }] })
    const d = await execFileAsync(process.execPath, [bin, 'diff', busyboxArchive(), 'combo-insight:1', '--cache-dir', other], { encoding: 'utf8', timeout: 120_000 }).catch((e: { stderr: string }) => ({ stdout: '', stderr: e.stderr }))
    expect(d.stderr).toBe('')
    for (const path of ['/one.txt', '/a.txt', '/a-copy.txt']) expect(d.stdout).toContain(path)
    expect(storeProblems(other)).toEqual([])
  })

  it('an SBOM of an all-hit lazy build whose layers stay remote (a gzip push, or no output) fetches the layers it reads', async () => {
    const ref = `${reg.host}/combo/cache:sbom`
    const tag = `${reg.host}/combo/app:sbom`
    // Named alike: the SBOM document is named after the first tag.
    const cold = (await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: join(work, 'cold-6'), tags: [tag], attest: { sbom: true }, cacheTo: [{ type: 'registry', ref, mode: 'max' }] })) as LocalBuildResult
    for (const output of [{ type: 'registry' as const }, undefined]) {
      const store = join(work, `sbom-store-${output?.type ?? 'none'}`)
      const r = (await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: store, cacheFrom: [{ type: 'registry', ref }], tags: [tag], attest: { sbom: true }, ...(output ? { output, registry: { configDir: join(work, 'no-config') } } : {}) })) as LocalBuildResult
      for (const v of r.vertices.filter((x) => x.key !== undefined)) expect(v.cached, v.description).toBe(true)
      // The same image and the same SBOM as the cold build's (its index names both).
      expect(r.digest).toBe(cold.digest)
      expect(storeProblems(store)).toEqual([])
    }
    const index = JSON.parse((await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${tag}`])).stdout) as { manifests: { digest: string }[] }
    expect(index.manifests.map((m) => m.digest)).toEqual(cold.index!.manifests.map((m) => m.digest))
  })

  it('an SBOM reads every layer: a hit layer the cache sends other bytes for is refused and its step rebuilt, as for an archive, also with no output', async () => {
    const ref = `combo/cache:sbom-corrupt`
    const cold = (await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: join(work, 'cold-9'), cacheTo: [{ type: 'registry', ref: `${reg.host}/${ref}`, mode: 'max' }] })) as LocalBuildResult
    const config = ((await (await fetch(`${reg.url}/v2/combo/cache/manifests/${cold.cache!.exported[0]!.digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { config: { digest: string } }).config.digest
    // Every layer blob is flipped on the way; the cache's manifest and config arrive intact.
    const proxy = await startProxy(reg.host, { corrupt: true, paths: new RegExp(`/blobs/sha256:(?!${config.slice(7)})`) })
    try {
      const store = join(work, 'sbom-corrupt-store')
      const r = (await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: store, cacheFrom: [{ type: 'registry', ref: `${proxy.host}/${ref}` }], attest: { sbom: true } })) as LocalBuildResult
      expect(r.cache!.warnings.length).toBeGreaterThan(0)
      for (const w of r.cache!.warnings) expect(w).toMatch(/layer sha256:[a-f0-9]{64} refused \(.*does not match.*\); the step is rebuilt$/)
      expect(r.images![0]!.config.rootfs.diff_ids).toEqual(cold.config.rootfs.diff_ids)
      for (const l of r.layers) expect(blobsIn(store), l.digest).toContain(l.digest.slice(7))
      expect(storeProblems(store)).toEqual([])
    } finally {
      await proxy.stop()
    }
  })

  it('a push whose remote layers the cache registry refuses after the solve fails with that registry\'s error only once every fetch and upload it started has settled', async () => {
    const ref = `combo/cache:refused`
    await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: join(work, 'cold-8'), cacheTo: [{ type: 'registry', ref: `${reg.host}/${ref}`, mode: 'max' }] })
    const [proxy, target] = await Promise.all([startProxy(reg.host), startTestRegistry()])
    try {
      const store = join(work, 'refused-store')
      const err = await app()
        .build({
          sourceDateEpoch: 0,
          context: ctx,
          cacheDir: store,
          cacheFrom: [{ type: 'registry', ref: `${proxy.host}/${ref}` }],
          tags: [`${target.host}/combo/app:refused`],
          output: { type: 'registry' },
          // The solve is over (every step a hit): from now on the cache's registry refuses every blob.
          onProgress: (e) => {
            if (e.type === 'done' && e.description.includes('cat /a.txt')) proxy.faults = { paths: /\/blobs\/sha256:/, status: { code: 503, times: 1_000 } }
          },
        })
        .catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'REGISTRY_ERROR', details: { registry: proxy.host, status: 503 } })
      // Nothing still running: no blob being written into the store.
      expect(readdirSync(join(store, 'tmp'))).toEqual([])
      expect(storeProblems(store)).toEqual([])
      // The hit layers stay fetchable.
      expect(readdirSync(join(store, 'remote')).filter((f) => f.endsWith('.json')).length).toBeGreaterThan(0)
    } finally {
      await Promise.all([proxy.stop(), target.stop()])
    }
  })

  it('attestations (SBOM, max provenance) with zstd layers and a passing budget, imported lazily from a registry cache on an empty store, pushed: the index\'s attestation manifest names the zstd image manifest; podman pulls and runs it', async () => {
    const ref = `${reg.host}/combo/cache:attest`
    const cold = (await app().build({ sourceDateEpoch: 0, context: ctx, cacheDir: join(work, 'cold-4'), cacheTo: [{ type: 'registry', ref, mode: 'max' }] })) as LocalBuildResult
    const tag = `${reg.host}/combo/app:attested`
    const store = join(work, 'attest-store')
    const r = (await app().build({
      sourceDateEpoch: 0,
      context: ctx,
      cacheDir: store,
      cacheFrom: [{ type: 'registry', ref }],
      tags: [tag],
      registry: { configDir: join(work, 'no-config') },
      attest: { sbom: true, provenance: 'max' },
      budget: { size: 50_000_000, layers: 10 },
      output: { type: 'registry', compression: 'zstd' },
    })) as LocalBuildResult
    for (const v of r.vertices.filter((x) => x.key !== undefined)) expect(v.cached, v.description).toBe(true)
    expect(r.cache!.warnings).toEqual([])
    const index = JSON.parse((await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${tag}`])).stdout) as { mediaType: string; manifests: { mediaType: string; digest: string; annotations?: Record<string, string>; platform?: { os: string; architecture: string } }[] }
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(index.manifests).toHaveLength(2)
    const [img, att] = index.manifests
    expect(att!.annotations).toEqual({ 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': img!.digest })
    expect(att!.platform).toEqual({ os: 'unknown', architecture: 'unknown' })
    const repo = `docker://${reg.host}/combo/app`
    const manifest = JSON.parse((await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `${repo}@${img!.digest}`])).stdout) as { layers: { mediaType: string; digest: string }[] }
    // The base layer keeps its gzip; every layer this build made is tar+zstd.
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip', ...cold.layers.slice(1).map(() => 'application/vnd.oci.image.layer.v1.tar+zstd')])
    expect(manifest.layers.slice(1).map((l) => l.digest)).not.toEqual(cold.layers.slice(1).map((l) => l.digest))
    const attManifest = JSON.parse((await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `${repo}@${att!.digest}`])).stdout) as { layers: { digest: string; annotations?: Record<string, string> }[] }
    expect(attManifest.layers.map((l) => l.annotations?.['in-toto.io/predicate-type']).sort()).toEqual(['https://slsa.dev/provenance/v0.2', 'https://spdx.dev/Document'])
    for (const l of attManifest.layers) {
      const res = await fetch(`${reg.url}/v2/combo/app/blobs/${l.digest}`)
      const statement = (await res.json()) as { subject: { digest: { sha256: string } }[] }
      expect(statement.subject.map((x) => `sha256:${x.digest.sha256}`)).toEqual([img!.digest])
    }
    expect(storeProblems(store)).toEqual([])

    const podman = await createPodmanStore()
    try {
      await podman.podman(['pull', '--tls-verify=false', tag], { timeoutMs: 120_000 })
      expect((await podman.run(tag, { args: ['cat', '/one.txt', '/a-copy.txt'] })).stdout).toBe('one\nfirst\n')
    } finally {
      await podman.cleanup()
    }
  }, 240_000)
})
