/**
 * A COPY source that is not there, in a Dockerfile build: the error names the Dockerfile line (as a
 * parse error does), where it looked (the context directory) and a close match when there is one.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fromDockerfile } from '../../src/index.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

const root = resolve(__dirname, '../..')
let work: string
let ctx: string

beforeAll(async () => {
  work = await tmpDir('ism-notfound-')
  ctx = join(work, 'ctx')
  mkdirSync(join(ctx, 'src'), { recursive: true })
  writeFileSync(join(ctx, 'src', 'main.js'), 'x\n')
  writeFileSync(join(ctx, 'README.md'), 'r\n')
  writeFileSync(join(ctx, 'secret.env'), 's\n')
  writeFileSync(join(ctx, '.dockerignore'), 'secret.env\n')
})
afterAll(() => cleanupTmpDirs())

const dockerfile = (copy: string) => `FROM scratch\n\n# the app\nCOPY src/main.js /app/\n${copy}\n`

function cli(df: string) {
  writeFileSync(join(work, 'Dockerfile'), df)
  return spawnSync(process.execPath, [join(root, 'bin', 'imagesmith.js'), 'build', '-f', join(work, 'Dockerfile'), '--progress', 'quiet', ctx], {
    encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache') }, timeout: 120_000,
  })
}

describe('COPY of a source that is not there', () => {
  it('the CLI names the Dockerfile line, the context dir and a close match', () => {
    const r = cli(dockerfile('COPY src/mian.js /app/'))
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(`error [COPY_SOURCE_NOT_FOUND]: Dockerfile:5: source src/mian.js not found in the build context ${ctx} (did you mean src/main.js?)`)
  })

  it('a name differing in case, and one the .dockerignore leaves out, are named as such', () => {
    expect(cli(dockerfile('COPY readme.md /')).stderr).toContain('(did you mean README.md?)')
    expect(cli(dockerfile('COPY secret.env /')).stderr).toContain('(secret.env is excluded by .dockerignore)')
    // Nothing close: no guess.
    expect(cli(dockerfile('COPY nothing-like-it /')).stderr).toMatch(/not found in the build context [^\n(]*\n/)
  })

  it('through the API: details carry the file, line, root and suggestion', async () => {
    const e = await fromDockerfile(dockerfile('COPY src/mian.js /app/')).target.build({ context: ctx, cacheDir: join(work, 'cache') }).catch((x: unknown) => x)
    expect(e).toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND', details: { dockerfile: 'Dockerfile', line: 5, root: ctx, suggestion: 'src/main.js', path: 'src/mian.js' } })
  })
})
