/**
 * Layer insight on a real build: an image whose COPY adds 5 MB that a later RUN deletes and whose
 * RUN writes 2 MB that a later RUN overwrites. The expected figures are computed here from the
 * layer tars themselves (node-tar), not by the code under test.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/main.js'
import { image } from '../../src/index.js'
import type { LayerRef } from '../../src/oci/types.js'
import { existsSync } from 'node:fs'
import { ErrorCodes } from '../../src/errors.js'
import { findLocalImage } from '../../src/store/local-images.js'
import { Store } from '../../src/store/store.js'
import { Parser, type ReadEntry } from 'tar'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'
import { skopeoPush, startTestRegistry } from '../helpers/registry.js'

const bed = requireTools(['runc', 'docker-registry', 'skopeo'], { needsRoot: true })

const FIVE_MB = 5_000_000
const TWO_MB = 2_000_000

let work: string
let ctxDir: string
let storeDir: string
let archive: string
let archiveV2: string
/** A layer's entries by path as node-tar reads them: type and body bytes counted as they stream. */
type Listed = Map<string, { type: string; size: number }>
let layers: Listed[]

function listLayer(store: Store, layer: LayerRef): Promise<Listed> {
  const out: Listed = new Map()
  return new Promise((resolve, reject) => {
    const p = new Parser({
      onReadEntry: (e: ReadEntry) => {
        let size = 0
        e.on('data', (c: Buffer) => { size += c.length })
        e.on('end', () => out.set(e.path.replace(/\/$/, '').replace(/^\.\//, ''), { type: e.type, size }))
      },
    })
    p.on('end', () => resolve(out))
    p.on('error', reject)
    const s = store.blobs.open(layer.digest)
    s.on('error', reject)
    s.pipe(p as unknown as NodeJS.WritableStream)
  })
}
let steps: string[]
let built: LayerRef[]

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await main(args, { out: (s) => { out += s }, err: (s) => { err += s } })
  return { code, out, err }
}

const app = (version: string) => image()
  .from(`oci-archive:${busyboxArchive()}`)
  .copy('big.bin', '/data/big.bin')
  .run('rm /data/big.bin')
  .run(`head -c ${TWO_MB} /dev/urandom > /data/two.bin`)
  .run(`head -c ${TWO_MB} /dev/zero > /data/two.bin && echo ${version} > /version && echo same > /same`)

describe.skipIf(bed.skip)('layer insight', () => {
  beforeAll(async () => {
    work = await tmpDir()
    ctxDir = join(work, 'ctx')
    storeDir = join(work, 'store')
    archive = join(work, 'app-v1.tar')
    archiveV2 = join(work, 'app-v2.tar')
    await import('node:fs/promises').then((f) => f.mkdir(ctxDir))
    writeFileSync(join(ctxDir, 'big.bin'), Buffer.alloc(FIVE_MB, 7))
    const r1 = await app('1').build({ context: ctxDir, cacheDir: storeDir, output: { type: 'oci', dest: archive } })
    await app('2').build({ context: ctxDir, cacheDir: storeDir, output: { type: 'oci', dest: archiveV2 } })
    const store = new Store(storeDir)
    await store.init()
    layers = []
    built = [...(r1.layers as LayerRef[])]
    for (const l of built) layers.push(await listLayer(store, l))
    steps = (r1.config!.history ?? []).filter((h) => !h.empty_layer).map((h) => h.created_by ?? '')
  }, 240_000)
  afterAll(cleanupTmpDirs)

  /** Per layer, each regular file's bytes that a later layer overwrites or whites out. */
  function hiddenFromTars(): { path: string; size: number; added: number; hidden: number }[] {
    const out: { path: string; size: number; added: number; hidden: number }[] = []
    for (const [i, layer] of layers.entries()) {
      for (const [path, e] of layer) {
        if (e.type !== 'File' || e.size === 0) continue
        const slash = path.lastIndexOf('/')
        const whiteout = `${path.slice(0, slash + 1)}.wh.${path.slice(slash + 1)}`
        const j = layers.findIndex((l, k) => k > i && (l.has(path) || l.has(whiteout)))
        if (j >= 0) out.push({ path, size: e.size, added: i, hidden: j })
      }
    }
    return out
  }

  /** dive's efficiency, from the tars: each layer's leaves (entries with nothing under them), whiteouts of files weigh 0. */
  function diveFromTars(): { efficiency: number; wasted: number } {
    const seen = new Map<string, number[]>()
    for (const layer of layers) {
      const paths = [...layer.keys()]
      const parents = new Set(paths.flatMap((p) => p.split('/').slice(0, -1).map((_, k, parts) => parts.slice(0, k + 1).join('/'))))
      for (const [p, e] of layer) {
        if (parents.has(p) || p.split('/').pop()!.startsWith('.wh..wh..')) continue
        const base = p.split('/').pop()!
        const path = base.startsWith('.wh.') ? p.replace(/\.wh\.([^/]*)$/, '$1') : p
        const size = base.startsWith('.wh.') || e.type !== 'File' ? 0 : e.size
        seen.set(path, [...(seen.get(path) ?? []), size])
      }
    }
    let min = 0
    let total = 0
    let wasted = 0
    for (const sizes of seen.values()) {
      min += Math.min(...sizes)
      const t = sizes.reduce((a, b) => a + b, 0)
      total += t
      if (sizes.length > 1) wasted += t
    }
    return { efficiency: min / total, wasted }
  }

  it('inspect --layers --format json: wastedBytes is exactly the hidden bytes, each path with the step that added it and the one that hid it', async () => {
    const r = await cli(['inspect', archive, '--layers', '--format', 'json'])
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    const [report] = JSON.parse(r.out) as { wastedBytes: number; wasted: { path: string; size: number; how: string; addedBy: { layer: number; step: string }; hiddenBy: { layer: number; step: string } }[]; layers: { step: string; added: number; removed: number; compressedSize: number }[]; dive: { efficiency: number; wastedBytes: number } }[]
    const hidden = hiddenFromTars()
    expect(hidden.map((h) => h.path).sort()).toEqual(['data/big.bin', 'data/two.bin'])
    expect(report!.wastedBytes).toBe(hidden.reduce((s, h) => s + h.size, 0))
    expect(report!.wastedBytes).toBe(FIVE_MB + TWO_MB)
    const big = report!.wasted.find((w) => w.path === 'data/big.bin')!
    expect(big).toMatchObject({ size: FIVE_MB, how: 'deleted', addedBy: { step: steps[1] }, hiddenBy: { step: steps[2] } })
    expect(big.addedBy.step).toMatch(/^COPY /)
    expect(big.hiddenBy.step).toContain('rm /data/big.bin')
    const two = report!.wasted.find((w) => w.path === 'data/two.bin')!
    expect(two).toMatchObject({ size: TWO_MB, how: 'overwritten', addedBy: { step: steps[3] }, hiddenBy: { step: steps[4] } })
    expect(two.addedBy.step).toContain('/dev/urandom')
    expect(two.hiddenBy.step).toContain('/dev/zero')
    // dive's figures, by dive's definitions, from the tars
    const dive = diveFromTars()
    expect(report!.dive.wastedBytes).toBe(dive.wasted)
    expect(report!.dive.efficiency).toBeCloseTo(dive.efficiency, 12)
    expect(report!.layers.map((l) => l.step)).toEqual(steps)
    expect(report!.layers[2]!.removed).toBe(1)
  })

  it('inspect --layers prints the table; --ci fails on a .dive-ci rule the image breaks and passes a loose one', async () => {
    const table = await cli(['inspect', archive, '--layers'])
    expect(table.code).toBe(0)
    expect(table.out).toMatch(/^#\s+DIGEST\s+COMPRESSED\s+SIZE\s+ADDED\s+CHANGED\s+REMOVED\s+STEP$/m)
    expect(table.out).toContain('/data/big.bin: added by layer 1')
    expect(table.out).toContain('deleted by layer 2')
    const strict = join(work, 'strict.dive-ci')
    writeFileSync(strict, 'rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 1MB\n  highestUserWastedPercent: disabled\n')
    const failed = await cli(['inspect', archive, '--ci', '--ci-config', strict])
    expect(failed.code).toBe(1)
    expect(failed.out).toContain('FAIL: highestWastedBytes')
    const loose = join(work, 'loose.dive-ci')
    writeFileSync(loose, 'rules:\n  lowestEfficiency: 0.1\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: off\n')
    const passed = await cli(['inspect', archive, '--ci', '--ci-config', loose])
    expect(passed.out).not.toContain('FAIL')
    expect(passed.code).toBe(0)
  })

  it('diff names the changed file and none of the unchanged ones', async () => {
    const r = await cli(['diff', archive, archiveV2, '--format', 'json'])
    expect(r.code).toBe(0)
    const d = JSON.parse(r.out) as { added: unknown[]; removed: unknown[]; changed: { path: string; changes: Record<string, unknown> }[] }
    expect(d.added).toEqual([])
    expect(d.removed).toEqual([])
    expect(d.changed.map((c) => c.path)).toContain('version')
    expect(d.changed.find((c) => c.path === 'version')!.changes).toEqual({ content: true })
    expect(d.changed.map((c) => c.path)).not.toContain('same')
    expect(d.changed.map((c) => c.path)).not.toContain('data/two.bin')
    expect(d.changed.map((c) => c.path)).not.toContain('bin/busybox')
    const text = await cli(['diff', archive, archiveV2])
    expect(text.out).toContain('~ /version  content')
  })

  it('a build over its wasted budget fails BUDGET_EXCEEDED naming the paths and steps, and leaves no output; a budget it keeps passes', async () => {
    const dest = join(work, 'over.tar')
    // The layers this build's writers wrote have their entry record; the base image's has none yet.
    const recorded = () => built.map((l) => existsSync(join(storeDir, 'layer-files', `${l.digest.slice(7)}.json`)))
    expect(recorded()).toEqual([false, true, true, true, true])
    const e = await app('3').build({ context: ctxDir, cacheDir: storeDir, output: { type: 'oci', dest }, tags: ['insight/over:1'], budget: { wasted: 1_000_000 } }).catch((x: unknown) => x)
    expect(e).toMatchObject({ code: ErrorCodes.BUDGET_EXCEEDED, details: { budget: 'wasted', limit: 1_000_000, actual: FIVE_MB + TWO_MB } })
    const worst = (e as { details: { worst: { path: string; addedBy: string; hiddenBy: string }[] } }).details.worst
    expect(worst.map((w) => w.path)).toEqual(['/data/big.bin', '/data/two.bin'])
    expect(worst[0]!.addedBy).toMatch(/^COPY /)
    expect(worst[0]!.hiddenBy).toContain('rm /data/big.bin')
    expect((e as Error).message).toContain('/data/big.bin')
    expect(existsSync(dest)).toBe(false)
    expect(recorded()).toEqual([true, true, true, true, true])
    const store = new Store(storeDir)
    await store.init()
    expect(await findLocalImage(store, 'insight/over:1')).toBeUndefined()

    const ok = join(work, 'ok.tar')
    await app('3').build({ context: ctxDir, cacheDir: storeDir, output: { type: 'oci', dest: ok }, budget: { wasted: 20_000_000, size: 120_000_000, layers: 30 } })
    expect(existsSync(ok)).toBe(true)
  })

  it('--budget on the command line: wasted=1MB fails typed with no output, layers below the count fails too', async () => {
    const script = join(ctxDir, 'build.ts')
    writeFileSync(script, `import { image } from ${JSON.stringify(join(__dirname, '../../src/index.js'))}\nexport default image().from(${JSON.stringify(`oci-archive:${busyboxArchive()}`)}).copy('big.bin', '/data/big.bin').run('rm /data/big.bin')\n`)
    const dest = join(work, 'cli-over.tar')
    const r = await cli(['build', script, '--context', ctxDir, '--cache-dir', storeDir, '-o', `type=oci,dest=${dest}`, '--budget', 'wasted=1MB', '--progress', 'quiet'])
    expect(r.code).toBe(1)
    expect(r.err).toContain('BUDGET_EXCEEDED')
    expect(r.err).toContain('/data/big.bin')
    expect(existsSync(dest)).toBe(false)
    const layers = await cli(['build', script, '--context', ctxDir, '--cache-dir', storeDir, '-o', `type=oci,dest=${dest}`, '--budget', 'layers=2', '--progress', 'quiet'])
    expect(layers.err).toContain('BUDGET_EXCEEDED')
    expect(existsSync(dest)).toBe(false)
  })

  it('inspect --layers takes a registry reference: the image is pulled into the store, then weighed the same', async () => {
    const reg = await startTestRegistry()
    try {
      await skopeoPush(reg, `oci-archive:${archive}`, 'insight/app:1')
      const r = await cli(['inspect', `${reg.host}/insight/app:1`, '--layers', '--format', 'json', '--cache-dir', join(work, 'pulled')])
      expect(r.err).toBe('')
      const [report] = JSON.parse(r.out) as { name: string; wastedBytes: number; layers: unknown[] }[]
      expect(report).toMatchObject({ name: `${reg.host}/insight/app:1`, wastedBytes: FIVE_MB + TWO_MB })
      expect(report!.layers).toHaveLength(layers.length)
    } finally {
      await reg.stop()
    }
  })
})
