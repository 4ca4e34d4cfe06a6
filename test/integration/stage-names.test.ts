/**
 * Stage names as a build shows them: `COPY --from=build` in step descriptions (progress, records,
 * `imagesmith graph`), the changed source stage named in a miss reason, and `noCacheFilter` acting
 * on the named stage's own steps wherever they are used. Names are presentation: never in a key.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fromDockerfile, image } from '../../src/index.js'
import type { LocalBuildResult } from '../../src/pipeline/options.js'
import type { ProgressEvent } from '../../src/solver/types.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

let root: string
let ctx: string

beforeAll(async () => {
  root = await tmpDir('ism-stage-names-')
  ctx = join(root, 'ctx')
  mkdirSync(ctx)
  writeFileSync(join(ctx, 'a.txt'), 'a\n')
  writeFileSync(join(ctx, 'b.txt'), 'b\n')
})
afterAll(cleanupTmpDirs)

const step = (r: LocalBuildResult, text: string) => {
  const v = r.vertices.find((x) => x.description.includes(text))
  if (!v) throw new Error(`no step ${text} in ${r.vertices.map((x) => x.description).join(' | ')}`)
  return v
}

const DF = ['FROM scratch AS build', 'COPY b.txt /b.txt', '', 'FROM scratch', 'COPY a.txt /a.txt', 'COPY --from=build /b.txt /c.txt', ''].join('\n')

describe('stage names', () => {
  it('progress and records say --from=build, and a miss names the source stage that changed; keys do not change', async () => {
    const cacheDir = join(root, 'c1')
    const events: ProgressEvent[] = []
    const first = await fromDockerfile(DF, { contextDir: ctx }).build({ cacheDir, onProgress: (e) => events.push(e) })
    expect(step(first, 'COPY --from=').description).toBe('COPY --from=build /b.txt /c.txt')
    expect(events.some((e) => e.type === 'start' && e.description === 'COPY --from=build /b.txt /c.txt')).toBe(true)
    // The same steps built without names hit every layer: the name is not in a key.
    const app = image().copy('a.txt', '/a.txt').copy('/b.txt', '/c.txt', { from: image().copy('b.txt', '/b.txt') })
    const unnamed = await app.build({ context: ctx, cacheDir })
    expect(unnamed.cacheHits).toBe(3)
    expect(unnamed.digest).toBe(first.digest)

    writeFileSync(join(ctx, 'b.txt'), 'b2\n')
    const second = await fromDockerfile(DF, { contextDir: ctx }).build({ cacheDir })
    expect(step(second, 'COPY --from=build').reason).toBe('source stage build changed')
  })

  it('noCacheFilter names a stage whose steps another stage extends (web = base.copy(...)): they are its own, and rebuilt', async () => {
    const cacheDir = join(root, 'c2')
    const base = image().copy('a.txt', '/a.txt')
    const web = base.copy('b.txt', '/b.txt')
    const first = await web.build({ context: ctx, cacheDir, stages: { base, web } })
    expect(step(first, 'COPY a.txt').stage).toBe('base')
    expect(step(first, 'COPY b.txt').stage).toBe('web')
    const r = await web.build({ context: ctx, cacheDir, stages: { base, web }, noCacheFilter: ['base'] })
    expect(step(r, 'COPY a.txt')).toMatchObject({ cached: false, reason: 'no-cache-filter: stage base' })
    expect(step(r, 'COPY b.txt').cached).toBe(true)
    const w = await web.build({ context: ctx, cacheDir, stages: { base, web }, noCacheFilter: ['web'] })
    expect(step(w, 'COPY a.txt').cached).toBe(true)
    expect(step(w, 'COPY b.txt')).toMatchObject({ cached: false, reason: 'no-cache-filter: stage web' })
  })

  it('imagesmith graph labels COPY --from with the record key of the stage', () => {
    const script = join(root, 'build.ts')
    const api = resolve(__dirname, '../../src/index.ts')
    writeFileSync(script, [
      `import { image } from ${JSON.stringify(api)}`,
      `const build = image().copy('b.txt', '/b.txt')`,
      `const app = image().copy('/b.txt', '/c.txt', { from: build })`,
      'export default { build, app }',
      '',
    ].join('\n'))
    const bin = resolve(__dirname, '../../bin/imagesmith.js')
    const r = spawnSync(process.execPath, [bin, 'graph', script, '--target', 'app'], { cwd: root, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(root, 'c3') }, timeout: 120_000 })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain('COPY --from=build /b.txt /c.txt')
    expect(r.stdout).not.toContain('<stage>')
  })
})
