/**
 * `bake()`: three services on a shared base in ONE solve. The base's RUN writes a random token, so
 * three images carrying one token prove the base ran once; each image equals its target built alone
 * on the same store; a change to one service's context rebuilds only that service's steps; a failing
 * target fails the bake naming it.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bake, image, type BuildOptions, type ImageBuilder, type ProgressEvent } from '../../src/index.js'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import { readImageFile } from '../../src/ops/image-file.js'
import { Store } from '../../src/store/store.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc', 'tar'])
const SERVICES = ['api', 'web', 'worker'] as const
const TOKEN_RUN = 'head -c 16 /dev/urandom | od -An -tx1 > /token'

let work: string
let context: string
let targets: Record<string, ImageBuilder>
const opts = (cacheDir: string): BuildOptions => ({ cacheDir, context, sourceDateEpoch: 0, network: 'none' })

beforeAll(async () => {
  work = await tmpDir('ism-bake-')
  context = join(work, 'ctx')
  for (const s of SERVICES) {
    mkdirSync(join(context, s), { recursive: true })
    writeFileSync(join(context, s, 'app.txt'), `${s} v1\n`)
  }
  const base = image().from(`oci-archive:${busyboxArchive()}`).run(TOKEN_RUN)
  targets = Object.fromEntries(SERVICES.map((s) => [s, base.copy(`${s}/app.txt`, `/srv/app.txt`).run(`cp /srv/app.txt /srv/${s}.out`)]))
})
afterAll(() => cleanupTmpDirs())

async function rejected(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => expect.unreachable('the bake should fail'), (e: unknown) => e)
}

async function token(cacheDir: string, layers: Parameters<typeof readImageFile>[1]): Promise<string> {
  return (await readImageFile(new Store(cacheDir), layers, '/token'))!.toString()
}

describe.skipIf(bed.skip)('bake: many targets in one solve', () => {
  it('builds three services with the base run once, each equal to the target built alone', async () => {
    const cacheDir = join(work, 'store-a')
    const events: ProgressEvent[] = []
    const results = await bake(targets, { ...opts(cacheDir), outDir: join(work, 'out-a'), onProgress: (e) => events.push(e) })
    expect(Object.keys(results)).toEqual([...SERVICES])
    const tokenRuns = events.filter((e) => e.type === 'start' && e.description.includes(TOKEN_RUN))
    expect(tokenRuns).toHaveLength(1)
    // The shared step names every target it serves; a service's own steps name only it.
    expect(tokenRuns[0]!.type === 'start' && tokenRuns[0]!.description.startsWith('[api,web,worker] ')).toBe(true)
    expect(events.some((e) => e.type === 'start' && e.description.startsWith('[web] RUN cp /srv/app.txt /srv/web.out'))).toBe(true)
    const tokens = await Promise.all(SERVICES.map((s) => token(cacheDir, results[s]!.layers)))
    expect(new Set(tokens).size).toBe(1)
    expect(tokens[0]).toMatch(/^( [0-9a-f]{2}){16}\n$/)
    for (const s of SERVICES) {
      expect(results[s]!.output).toBe(join(work, 'out-a', `${s}.tar`))
      expect(existsSync(join(work, 'out-a', `${s}.tar`))).toBe(true)
    }
    expect(new Set(SERVICES.map((s) => results[s]!.digest)).size).toBe(3)
    for (const s of SERVICES) expect((await targets[s]!.build(opts(cacheDir))).digest).toBe(results[s]!.digest)
  })

  it("a change to one service's context rebuilds only that service's steps", async () => {
    const cacheDir = join(work, 'store-b')
    const first = await bake(targets, opts(cacheDir))
    writeFileSync(join(context, 'web', 'app.txt'), 'web v2\n')
    try {
      const again = await bake(targets, opts(cacheDir))
      for (const s of ['api', 'worker']) {
        expect(again[s]!.digest).toBe(first[s]!.digest)
        expect(again[s]!.vertices.filter((v) => v.key !== undefined && !v.cached)).toEqual([])
      }
      const rebuilt = again.web!.vertices.filter((v) => v.key !== undefined && !v.cached).map((v) => v.description)
      expect(rebuilt).toEqual(['COPY web/app.txt /srv/app.txt', 'RUN cp /srv/app.txt /srv/web.out'])
      expect(again.web!.digest).not.toBe(first.web!.digest)
      expect(await token(cacheDir, again.web!.layers)).toBe(await token(cacheDir, first.web!.layers))
    } finally {
      writeFileSync(join(context, 'web', 'app.txt'), 'web v1\n')
    }
  })

  it('a failing target fails the bake with the target named, and writes no output for it', async () => {
    const broken = targets.api!.run('echo broken >&2; exit 3')
    const outDir = join(work, 'out-fail')
    const err = await rejected(bake({ ...targets, broken }, { ...opts(join(work, 'store-c')), outDir }))
    expect(err).toBeInstanceOf(ImagesmithError)
    const e = err as ImagesmithError
    expect(e.code).toBe(ErrorCodes.BAKE_TARGET_FAILED)
    expect(e.details).toMatchObject({ target: 'broken', targets: ['broken'], code: ErrorCodes.RUN_FAILED })
    expect(e.message).toMatch(/^target "broken": /)
    expect(existsSync(join(outDir, 'broken.tar'))).toBe(false)
  })

  it("gives each target its own options over the bake's defaults, in the same solve", async () => {
    const cacheDir = join(work, 'store-e')
    const r = await bake(targets, { ...opts(cacheDir), defaults: { labels: { team: 'core' } }, targets: { web: { labels: { tier: 'front' }, buildArgs: { UNUSED: '1' } } } })
    expect(r.web!.config.config?.Labels).toEqual({ tier: 'front' })
    expect(r.api!.config.config?.Labels).toEqual({ team: 'core' })
    expect(r.worker!.config.config?.Labels).toEqual({ team: 'core' })
    expect((await targets.web!.build({ ...opts(cacheDir), labels: { tier: 'front' } })).digest).toBe(r.web!.digest)
  })

  it('names the target whose base cannot be resolved', async () => {
    const lost = image().from(`oci-archive:${join(work, 'missing.tar')}`).run('true')
    const err = (await rejected(bake({ ...targets, lost }, opts(join(work, 'store-f'))))) as ImagesmithError
    expect(err.code).toBe(ErrorCodes.BAKE_TARGET_FAILED)
    expect(err.details).toMatchObject({ target: 'lost', targets: ['lost'] })
  })

  it('names the target whose options are bad before any work', async () => {
    const err = await rejected(bake(targets, { ...opts(join(work, 'store-d')), targets: { web: { tags: ['Not A Tag'] } } }))
    expect((err as ImagesmithError).code).toBe(ErrorCodes.BAKE_TARGET_FAILED)
    expect((err as ImagesmithError).details).toMatchObject({ target: 'web' })
  })
})
