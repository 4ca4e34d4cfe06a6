/**
 * Why a step missed the cache: each rebuilt step's record names what changed since it was last built
 * in this store (context files, env, parent, no-cache, no-cache-filter); unchanged steps hit.
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fromDockerfile, image } from '../../src/index.js'
import type { LocalBuildResult } from '../../src/pipeline/options.js'
import type { ProgressEvent } from '../../src/solver/types.js'
import { busyboxArchive, cleanupTmpDirs, debianArchive, tmpDir } from '../helpers/testbed.js'

let root: string
let ctx: string
let cacheDir: string

beforeAll(async () => {
  root = await tmpDir('ism-why-')
  ctx = join(root, 'ctx')
  cacheDir = join(root, 'cache')
  mkdirSync(join(ctx, 'src'), { recursive: true })
  writeFileSync(join(ctx, 'other.txt'), 'other\n')
  for (let i = 0; i < 5; i++) writeFileSync(join(ctx, 'src', `f${i}.txt`), `file ${i}\n`)
})
afterAll(cleanupTmpDirs)

const base = () => image().from(`oci-archive:${busyboxArchive()}`)
const step = (r: LocalBuildResult, text: string) => {
  const v = r.vertices.find((x) => x.description.includes(text))
  if (!v) throw new Error(`no step ${text} in ${r.vertices.map((x) => x.description).join(' | ')}`)
  return v
}

describe('why a step missed the cache', () => {
  const app = () => base().copy('other.txt', '/other.txt').copy('src', '/app').run('ls /app > /list', { network: 'none' })

  it('a changed context file rebuilds only its COPY and what follows, naming the file; edited back, all hit', async () => {
    const first = await app().build({ context: ctx, cacheDir })
    expect(step(first, 'COPY src').reason).toBe('first build of this step')
    expect(step(first, 'COPY src').cached).toBe(false)

    writeFileSync(join(ctx, 'src', 'f3.txt'), 'changed\n')
    const events: ProgressEvent[] = []
    const second = await app().build({ context: ctx, cacheDir, onProgress: (e) => events.push(e) })
    expect(step(second, 'COPY other.txt').cached).toBe(true)
    expect(step(second, 'COPY other.txt').reason).toBeUndefined()
    const copy = step(second, 'COPY src')
    expect(copy.cached).toBe(false)
    expect(copy.reason).toBe('1 context file changed: src/f3.txt')
    const run = step(second, 'ls /app')
    expect(run.cached).toBe(false)
    expect(run.reason).toMatch(/^parent changed/)
    // The same reasons reach the progress stream, on `done`.
    const done = events.filter((e): e is Extract<ProgressEvent, { type: 'done' }> => e.type === 'done')
    expect(done.find((e) => e.vertex === copy.vertex)?.reason).toBe(copy.reason)
    expect(events.some((e) => e.type === 'cached' && e.vertex === step(second, 'COPY other.txt').vertex)).toBe(true)

    writeFileSync(join(ctx, 'src', 'f3.txt'), 'file 3\n')
    const back = await app().build({ context: ctx, cacheDir })
    for (const v of back.vertices.filter((x) => x.key !== undefined)) expect(v.cached, v.description).toBe(true)
    expect(back.digest).toBe(first.digest)
  })

  it('many changed files: the first few paths and a count', async () => {
    for (let i = 0; i < 5; i++) writeFileSync(join(ctx, 'src', `f${i}.txt`), `v2 ${i}\n`)
    writeFileSync(join(ctx, 'src', 'new.txt'), 'new\n')
    const r = await app().build({ context: ctx, cacheDir })
    expect(step(r, 'COPY src').reason).toBe('6 context files changed: src/f0.txt, src/f1.txt, src/f2.txt and 3 more')
  })

  it('a changed ENV: the RUN after it misses and says so, earlier steps hit', async () => {
    const withEnv = (v: string) => base().copy('other.txt', '/other.txt').env('GREETING', v).run('echo "$GREETING" > /greeting', { network: 'none' })
    await withEnv('hello').build({ context: ctx, cacheDir })
    const r = await withEnv('bonjour').build({ context: ctx, cacheDir })
    expect(step(r, 'COPY other.txt').cached).toBe(true)
    const run = step(r, 'echo "$GREETING"')
    expect(run.cached).toBe(false)
    expect(run.reason).toBe('env changed: GREETING')
    const again = await withEnv('bonjour').build({ context: ctx, cacheDir })
    expect(step(again, 'echo "$GREETING"').cached).toBe(true)
  })

  it('a changed build ARG: the RUN that sees it misses and names it', async () => {
    const withArg = () => base().arg('VERSION').run('echo "$VERSION" > /version', { network: 'none' })
    await withArg().build({ context: ctx, cacheDir, buildArgs: { VERSION: '1' } })
    const r = await withArg().build({ context: ctx, cacheDir, buildArgs: { VERSION: '2' } })
    const run = step(r, 'echo "$VERSION"')
    expect(run.cached).toBe(false)
    expect(run.reason).toBe('ARG changed: VERSION')
  })

  it('another base under the same step: the reason says the base changed', async () => {
    const on = (ref: string) => image().from(ref).run('echo same > /same', { network: 'none' })
    await on(`oci-archive:${busyboxArchive()}`).build({ context: ctx, cacheDir })
    const r = await on(`oci-archive:${debianArchive()}`).build({ context: ctx, cacheDir })
    expect(step(r, 'echo same').reason).toMatch(/^base image changed/)
  })

  it('a layer being written reports its bytes as it goes', async () => {
    const big = join(root, 'bigctx')
    mkdirSync(big, { recursive: true })
    writeFileSync(join(big, 'blob.bin'), randomBytes(3 << 20))
    const events: ProgressEvent[] = []
    const r = await image().from('scratch').copy('blob.bin', '/blob.bin').build({ context: big, cacheDir, compression: 'none', onProgress: (e) => events.push(e) })
    const bytes = events.filter((e): e is Extract<ProgressEvent, { type: 'bytes' }> => e.type === 'bytes')
    expect(bytes.length).toBeGreaterThanOrEqual(2)
    expect(bytes.every((e) => e.vertex === step(r, 'COPY blob.bin').vertex)).toBe(true)
    expect(bytes.map((e) => e.bytes)).toEqual([...bytes.map((e) => e.bytes)].sort((a, b) => a - b))
    expect(bytes.at(-1)!.bytes).toBeGreaterThanOrEqual(3 << 20)
  })

  it('noCache rebuilds every layer and says so', async () => {
    const r = await app().build({ context: ctx, cacheDir, noCache: true })
    const layered = r.vertices.filter((v) => v.key !== undefined)
    expect(layered.length).toBe(3)
    for (const v of layered) {
      expect(v.cached).toBe(false)
      expect(v.reason).toMatch(/^no-cache/)
    }
  })

  it('noCacheFilter rebuilds only the named stage of a Dockerfile', async () => {
    const df = [
      `FROM oci-archive:${busyboxArchive()} AS deps`,
      'COPY other.txt /deps.txt',
      'RUN cat /deps.txt > /deps-copy',
      `FROM oci-archive:${busyboxArchive()} AS final`,
      'COPY --from=deps /deps-copy /d',
      'COPY src /app',
      '',
    ].join('\n')
    const imp = fromDockerfile(df, { contextDir: ctx })
    const first = await imp.build({ cacheDir, network: 'none' })
    expect(step(first, 'COPY other.txt').stage).toBe('deps')
    const r = await imp.build({ cacheDir, network: 'none', noCacheFilter: ['final'] })
    expect(step(r, 'COPY other.txt').cached).toBe(true)
    expect(step(r, 'RUN cat').cached).toBe(true)
    expect(step(r, 'COPY --from=deps').cached).toBe(false)
    expect(step(r, 'COPY --from=deps').reason).toBe('no-cache-filter: stage final')
    expect(step(r, 'COPY src').cached).toBe(false)
    const d = await imp.build({ cacheDir, network: 'none', noCacheFilter: ['deps'] })
    expect(step(d, 'COPY other.txt').cached).toBe(false)
    expect(step(d, 'RUN cat').cached).toBe(false)
    expect(step(d, 'COPY src').cached).toBe(true)
    await expect(imp.build({ cacheDir, network: 'none', noCacheFilter: ['nope'] })).rejects.toMatchObject({ code: 'TARGET_NOT_FOUND' })
  })
})
