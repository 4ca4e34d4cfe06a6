/**
 * Reproducible by default: a build with a RUN gives the same digest on empty stores at different
 * times, with no SOURCE_DATE_EPOCH; RUN layers' new file times are clamped to the epoch, config and
 * history times are the epoch; `reproducible: false` gives wall-clock times back.
 */
import { utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as tar from 'tar'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image, type BuildOptions } from '../../src/index.js'
import type { LocalBuildResult } from '../../src/pipeline/options.js'
import { Store } from '../../src/store/store.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const tools = requireTools(['runc'])
const T = 1_700_000_000

describe.skipIf(tools.skip)('reproducible builds by default', () => {
  let work: string
  let context: string
  let n = 0
  const app = () => image().from(`oci-archive:${busyboxArchive()}`)
    .copy('app.txt', '/app/')
    .copy('app.txt', '/gone/')
    // A whiteout (rm of a lower layer's dir) and new files and dirs: each with its time clamped.
    .run('echo built > /app/out && mkdir -p /var/made && rm -r /gone', { network: 'none' })
  const freshStore = () => join(work, `store-${++n}`)
  const build = async (over: Partial<BuildOptions> = {}) =>
    (await app().build({ context, cacheDir: freshStore(), network: 'none', ...over })) as LocalBuildResult

  async function mtimes(cacheDir: string, digest: string): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    await tar.t({
      file: Store.shared(cacheDir).blobs.blobPath(digest as never),
      onReadEntry: (e) => { out.set(e.path.replace(/\/$/, ''), Math.floor((e.mtime?.getTime() ?? 0) / 1000)) },
    })
    return out
  }

  beforeAll(async () => {
    work = await tmpDir('ism-repro-')
    context = join(work, 'ctx')
    const { mkdirSync } = await import('node:fs')
    mkdirSync(context)
    writeFileSync(join(context, 'app.txt'), 'hello\n')
    delete process.env.SOURCE_DATE_EPOCH
  })
  afterAll(cleanupTmpDirs)

  it('the same build with a RUN on two empty stores, seconds apart and with a touched context file, gives the same digest', async () => {
    const first = await build()
    // The RUN's files are written at least a second later than the first build's.
    const until = Date.now() + 1100
    while (Date.now() < until) await new Promise((r) => setTimeout(r, until - Date.now()))
    utimesSync(join(context, 'app.txt'), new Date(), new Date())
    const second = await build()
    expect(second.digest).toBe(first.digest)
    expect(second.configDigest).toBe(first.configDigest)
    expect(first.config.created).toBe('1970-01-01T00:00:00Z')
    expect(new Set(first.config.history!.map((h) => h.created)).has('1970-01-01T00:00:00Z')).toBe(true)
  })

  it("a RUN layer's files carry the clamped time; SOURCE_DATE_EPOCH sets the config's created", async () => {
    const cacheDir = freshStore()
    const r = (await app().build({ context, cacheDir, network: 'none', sourceDateEpoch: T })) as LocalBuildResult
    expect(r.config.created).toBe('2023-11-14T22:13:20Z')
    const runLayer = r.manifest.layers.at(-1)!
    const times = await mtimes(cacheDir, runLayer.digest)
    expect(times.get('app/out')).toBe(T)
    expect(times.get('var/made')).toBe(T)
    // The base layer is the base's, byte for byte: never rewritten.
    const plain = await build()
    expect(r.manifest.layers[0]!.digest).toBe(plain.manifest.layers[0]!.digest)
    const plainTimes = await mtimes(join(work, `store-${n}`), plain.manifest.layers.at(-1)!.digest)
    expect(plainTimes.get('app/out')).toBe(0)
  })

  it('reproducible: false keeps wall-clock times', async () => {
    const before = Math.floor(Date.now() / 1000) - 1
    const cacheDir = freshStore()
    const r = (await app().build({ context, cacheDir, network: 'none', reproducible: false })) as LocalBuildResult
    expect(Date.parse(r.config.created!) / 1000).toBeGreaterThanOrEqual(before)
    const times = await mtimes(cacheDir, r.manifest.layers.at(-1)!.digest)
    expect(times.get('app/out')).toBeGreaterThanOrEqual(before)
  })
})
