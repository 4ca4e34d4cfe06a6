/**
 * Cache GC: `imagesmith cache ls | du | prune` removes least recently used first, keeps what named
 * images need unless --all, honours --keep-storage and --filter until=, and never removes what a
 * build running in another process holds. After every prune the store verifies: each blob hashes
 * to its name and no cache entry names a missing blob.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const bed = requireTools(['skopeo', 'runc'], { needsRoot: true })

let work: string

function cli(args: string[], cache: string) {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, IMAGESMITH_CACHE: cache }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => child.on('exit', (code) => res({ code, stdout, stderr })))
  return { child, done, get stderr() { return stderr } }
}
const run = async (args: string[], cache: string) => {
  const r = await cli(args, cache).done
  expect(r.code, r.stderr).toBe(0)
  return r.stdout
}

/** Every blob hashes to its name; every cache entry naming a layer names a blob that is there. */
function verifyStore(cache: string): { blobs: number; entries: number } {
  const blobDir = join(cache, 'blobs', 'sha256')
  const blobs = existsSync(blobDir) ? readdirSync(blobDir) : []
  for (const b of blobs) expect(createHash('sha256').update(readFileSync(join(blobDir, b))).digest('hex')).toBe(b)
  const cacheDir = join(cache, 'cache')
  const entries = existsSync(cacheDir) ? readdirSync(cacheDir).filter((n) => n.endsWith('.json')) : []
  for (const e of entries) {
    const layer = (JSON.parse(readFileSync(join(cacheDir, e), 'utf8')) as { layer?: { digest: string } }).layer
    if (layer) expect(existsSync(join(blobDir, layer.digest.slice(7))), `${e} names ${layer.digest}`).toBe(true)
  }
  return { blobs: blobs.length, entries: entries.length }
}

function context(name: string, kb = 300): string {
  const dir = join(work, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'data.bin'), randomBytes(kb * 1024)) // incompressible: the layer is about this big
  return dir
}

/** Sets the mtime (prune's "last used") of everything in the store used in the last `newerThanMs` to `ageMs` ago. */
function age(cache: string, ageMs: number, newerThanMs = Infinity): void {
  const t = new Date(Date.now() - ageMs)
  for (const d of ['blobs/sha256', 'cache', 'snapshots']) {
    const dir = join(cache, d)
    if (!existsSync(dir)) continue
    for (const n of readdirSync(dir)) if (Date.now() - statSync(join(dir, n)).mtimeMs < newerThanMs) utimesSync(join(dir, n), t, t)
  }
}

const hasBlob = (cache: string, digest: string) => existsSync(join(cache, 'blobs', 'sha256', digest.slice(7)))
const copyImage = (ctx: string, cache: string, tags: string[] = []) => image().from('scratch').copy('.', '/data').build({ context: ctx, cacheDir: cache, tags })

beforeAll(async () => {
  work = await tmpDir('ism-gc-')
})
afterAll(() => cleanupTmpDirs())

describe.skipIf(bed.skip)('cache gc', () => {
  it('ls and du report; prune keeps what named images need; prune --all empties the store', async () => {
    const cache = join(work, 'c1')
    const named = await copyImage(context('a'), cache, ['gc/a:1'])
    const loose = await copyImage(context('b'), cache)
    const ls = JSON.parse(await run(['cache', 'ls', '--format', 'json'], cache)) as { kind: string; id: string; named: boolean; inUse: boolean }[]
    expect(ls.find((r) => r.id === named.layers[0]!.digest)).toMatchObject({ kind: 'blob', named: true, inUse: false })
    expect(ls.find((r) => r.id === loose.layers[0]!.digest)).toMatchObject({ kind: 'blob', named: false })
    expect(await run(['cache', 'du'], cache)).toMatch(/Reclaimable:\s+\d[\d.]*[kM]B[\s\S]*Total:/)

    const pruned = await run(['cache', 'prune'], cache)
    expect(pruned).toContain(`Deleted blob ${loose.layers[0]!.digest}`)
    expect(pruned).toMatch(/Total reclaimed space: [1-9][\d.]*[kM]B/)
    expect(hasBlob(cache, loose.layers[0]!.digest)).toBe(false)
    for (const d of [named.digest, named.configDigest, named.layers[0]!.digest]) expect(hasBlob(cache, d)).toBe(true)
    verifyStore(cache)
    // The named image still saves whole.
    await run(['save', 'gc/a:1', '-o', join(work, 'a.tar')], cache)

    const all = await run(['cache', 'prune', '--all'], cache)
    expect(all).toContain('Untagged: docker.io/gc/a:1')
    expect(verifyStore(cache)).toEqual({ blobs: 0, entries: 0 })
    for (const d of ['snapshots', 'images']) expect(existsSync(join(cache, d)) ? readdirSync(join(cache, d)) : []).toEqual([])
    expect(JSON.parse(await run(['images', '--format', 'json'], cache))).toEqual([])
  })

  it('rmi drops only the name: the next prune takes the blobs it no longer protects', async () => {
    const cache = join(work, 'c5')
    const img = await copyImage(context('r'), cache, ['gc/r:1'])
    await run(['cache', 'prune'], cache)
    expect(hasBlob(cache, img.layers[0]!.digest)).toBe(true)
    await run(['rmi', 'gc/r:1'], cache)
    expect(hasBlob(cache, img.layers[0]!.digest)).toBe(true)
    const pruned = await run(['cache', 'prune'], cache)
    for (const d of [img.digest, img.configDigest, img.layers[0]!.digest]) {
      expect(hasBlob(cache, d)).toBe(false)
      expect(pruned).toContain(`Deleted blob ${d}`)
    }
    verifyStore(cache)
  })

  it('--keep-storage removes least recently used first and keeps the most recently used', async () => {
    const cache = join(work, 'c2')
    const x = await copyImage(context('x'), cache)
    age(cache, 3 * 3600_000)
    const y = await copyImage(context('y'), cache)
    age(cache, 2 * 3600_000, 3600_000)
    const z = await copyImage(context('z'), cache)
    // Room for about one image (a 300 kB layer; a COPY-only build places no snapshot): x (oldest), then y go; z, the most recently used, stays.
    await run(['cache', 'prune', '--keep-storage', '450kB'], cache)
    expect(hasBlob(cache, x.layers[0]!.digest)).toBe(false)
    expect(hasBlob(cache, y.layers[0]!.digest)).toBe(false)
    expect(hasBlob(cache, z.layers[0]!.digest)).toBe(true)
    verifyStore(cache)
    // z's cache entry survived with its blob: rebuilding z is a hit.
    expect((await copyImage(join(work, 'z'), cache)).cacheHits).toBeGreaterThan(0)
  })

  it('--filter until=24h removes only what was last used before then', async () => {
    const cache = join(work, 'c3')
    const old = await copyImage(context('old'), cache)
    age(cache, 2 * 86400_000)
    const fresh = await copyImage(context('fresh'), cache)
    await run(['cache', 'prune', '--filter', 'until=24h'], cache)
    expect(hasBlob(cache, old.layers[0]!.digest)).toBe(false)
    expect(hasBlob(cache, fresh.layers[0]!.digest)).toBe(true)
    verifyStore(cache)
    const usage = await cli(['cache', 'prune', '--filter', 'until=yesterday'], cache).done
    expect(usage.code).toBe(2)
  })

  it('prune --all while a build runs in another process loses nothing the build needs', async () => {
    const cache = join(work, 'c4')
    const unrelated = await copyImage(context('unrelated'), cache)
    const ctx = context('slow', 2048)
    const script = join(work, 'slow.ts')
    writeFileSync(script, `import { image } from ${JSON.stringify(join(root, 'src', 'index.ts'))}\nexport default image().from(${JSON.stringify(`oci-archive:${busyboxArchive()}`)}).copy('.', '/data').run('sleep 4 && test -s /data/data.bin').env('DONE', '1')\n`)
    const out = join(work, 'slow.tar')
    const build = cli(['build', script, '--context', ctx, '-o', `type=oci,dest=${out}`, '--progress', 'plain'], cache)
    // Wait until the RUN step is running: the base is unpacked and mounted, the COPY layer written.
    for (let i = 0; i < 600 && !/sleep 4/.test(build.stderr); i++) await new Promise((r) => setTimeout(r, 50))
    expect(build.stderr).toMatch(/sleep 4/)
    const lease = readdirSync(join(cache, 'leases'))
    expect(lease).toHaveLength(1)

    const pruned = await cli(['cache', 'prune', '--all'], cache).done
    expect(pruned.code, pruned.stderr).toBe(0)
    expect(build.child.exitCode).toBeNull() // the prune ran while the build was still in its RUN
    expect(hasBlob(cache, unrelated.layers[0]!.digest)).toBe(false)
    // The base's snapshot (the RUN's mounted lower dir) and the COPY layer were leased, so kept.
    expect(readdirSync(join(cache, 'snapshots')).filter((n) => /^[0-9a-f]{64}$/.test(n)).length).toBeGreaterThan(0)
    const deletedSnapshots = [...pruned.stdout.matchAll(/Deleted snapshot (sha256:[0-9a-f]{64})/g)].map((m) => m[1])

    const result = await build.done
    expect(result.code, result.stderr).toBe(0)
    const inspected = JSON.parse((await runTool('skopeo', ['inspect', `oci-archive:${out}`])).stdout) as { Digest: string; Layers: string[] }
    expect(inspected.Digest).toBe(result.stdout.trim())
    for (const l of inspected.Layers) expect(hasBlob(cache, l)).toBe(true)
    const config = JSON.parse((await runTool('skopeo', ['inspect', '--config', `oci-archive:${out}`])).stdout) as { rootfs: { diff_ids: string[] } }
    for (const d of config.rootfs.diff_ids) expect(deletedSnapshots).not.toContain(d)
    verifyStore(cache)
    expect(readdirSync(join(cache, 'leases'))).toEqual([]) // released at the end of the build
    // The oci-image-tool-free check that the tarball is whole: skopeo copies it into a layout.
    await runTool('skopeo', ['copy', `oci-archive:${out}`, `oci:${join(work, 'slow-layout')}:x`])
  })
})
