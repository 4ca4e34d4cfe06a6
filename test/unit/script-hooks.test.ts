/** The build-script module hooks as plain functions: aliases, TypeScript siblings, the content-keyed transform cache. */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { sweepScriptCache } from '../../src/cli/script-cache.js'
import { directScript } from '../../src/cli/script-direct.js'
import { initialize, load, resolve, transformCached } from '../../src/cli/script-hooks.js'

const dir = mkdtempSync(join(tmpdir(), 'ism-hooks-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const url = (name: string) => pathToFileURL(join(dir, name)).href
const fail = async (s: string): Promise<never> => {
  throw Object.assign(new Error(`Cannot find module ${s}`), { code: 'ERR_MODULE_NOT_FOUND' })
}

describe('build script hooks', () => {
  it('maps aliased specifiers and resolved URLs, and finds x.ts for ./x.js or ./x from a TS parent only', async () => {
    writeFileSync(join(dir, 'lib.ts'), 'export const x = 1\n')
    initialize({ cacheDir: '', aliases: { imagesmith: 'file:///dist/index.js', [url('entry.ts')]: 'file:///dist/index.js' } })
    expect((await resolve('imagesmith', { parentURL: url('b.ts') }, fail)).url).toBe('file:///dist/index.js')
    expect((await resolve('./entry.ts', { parentURL: url('b.ts') }, async () => ({ url: url('entry.ts') }))).url).toBe('file:///dist/index.js')
    expect((await resolve('./lib.js', { parentURL: url('b.ts') }, fail)).url).toBe(url('lib.ts'))
    expect((await resolve('./lib', { parentURL: url('b.ts') }, fail)).url).toBe(url('lib.ts'))
    await expect(resolve('./lib.js', { parentURL: url('b.mjs') }, fail)).rejects.toThrow(/Cannot find module/)
    await expect(resolve('./none.js', { parentURL: url('b.ts') }, fail)).rejects.toThrow(/Cannot find module/)
  })

  it('transforms TypeScript to ESM once per content; other files go to the next loader', async () => {
    const cache = join(dir, 'cache')
    initialize({ cacheDir: cache, aliases: {} })
    writeFileSync(join(dir, 'enum.ts'), 'export enum E { A = 1 }\nexport const d: string = __dirname\n')
    const first = await load(url('enum.ts'), {}, async () => ({ format: 'never' }))
    expect(first.format).toBe('module')
    expect(String(first.source)).toContain(JSON.stringify(dir))
    expect(String(first.source)).not.toContain(': string')
    expect(readdirSync(cache)).toHaveLength(1)
    await load(url('enum.ts'), {}, async () => ({ format: 'never' }))
    expect(readdirSync(cache)).toHaveLength(1)
    writeFileSync(join(dir, 'enum.ts'), 'export enum E { A = 2 }\n')
    expect(String((await load(url('enum.ts'), {}, async () => ({ format: 'never' }))).source)).toContain('2')
    expect(readdirSync(cache)).toHaveLength(2)
    expect((await load(url('plain.mjs'), {}, async () => ({ format: 'passed-on' }))).format).toBe('passed-on')
  })

  it('a cached transform is read back as written; a cache that cannot be written is no error', async () => {
    const cache = join(dir, 'c2')
    const a = await transformCached(join(dir, 'x.ts'), 'const n: number = 1\nexport default n\n', cache)
    expect(await transformCached(join(dir, 'x.ts'), 'const n: number = 1\nexport default n\n', cache)).toBe(a)
    writeFileSync(join(dir, 'file-not-dir'), '')
    expect(await transformCached(join(dir, 'x.ts'), 'export default 2\n', join(dir, 'file-not-dir', 'sub'))).toContain('2')
  })
})

describe('self-contained build scripts (no hooks)', () => {
  const aliases = { imagesmith: 'file:///dist/index.js' }

  it('compiles a script importing only imagesmith and builtins, with the script’s own import.meta and __dirname, once per content', async () => {
    const cache = join(dir, 'direct')
    const file = join(dir, 'direct.ts')
    writeFileSync(file, `import { image } from 'imagesmith'\nimport { join } from 'node:path'\nenum E { A = 'a' }\nexport const where = [import.meta.url, import.meta.dirname, __dirname, join('x', E.A)]\nexport default image\n`)
    const url = await directScript(file, cache, aliases)
    expect(url).toMatch(/^file:.*\.mjs$/)
    const code = readFileSync(new URL(url!), 'utf8')
    expect(code).toContain('from "file:///dist/index.js"')
    expect(code).toContain(JSON.stringify(pathToFileURL(file).href))
    expect(code).toContain(JSON.stringify(dir))
    expect(await directScript(file, cache, aliases)).toBe(url)
    expect(readdirSync(cache)).toHaveLength(1)
  })

  it('leaves scripts with relative or package imports, dynamic import() or import.meta.resolve to the hooks, remembering the answer', async () => {
    const cache = join(dir, 'direct2')
    const rel = join(dir, 'rel.ts')
    writeFileSync(rel, `import { x } from './lib.js'\nexport default x\n`)
    expect(await directScript(rel, cache, aliases)).toBeUndefined()
    expect(readdirSync(cache).filter((f) => f.endsWith('.needs-hooks'))).toHaveLength(1)
    expect(await directScript(rel, cache, aliases)).toBeUndefined()
    for (const body of [`const m = await import('./lib.js')\nexport default m`, `export default import.meta.resolve('imagesmith')`]) {
      writeFileSync(rel, body)
      expect(await directScript(rel, cache, aliases)).toBeUndefined()
    }
    writeFileSync(rel, `import { x } from 'some-package'\nexport default x\n`)
    expect(await directScript(rel, cache, aliases)).toBeUndefined()
  })

  it('a syntax error is thrown with the script’s path and position', async () => {
    const bad = join(dir, 'bad.ts')
    writeFileSync(bad, `import { image } from 'imagesmith'\nexport default image(.from('scratch')\n`)
    await expect(directScript(bad, join(dir, 'direct3'), aliases)).rejects.toThrow(/bad\.ts:2:\d+: ERROR/)
  })
})

describe('compiled-script cache', () => {
  it('a new compile sweeps files not written for a week, and keeps the rest', async () => {
    const cache = join(dir, 'sweep')
    mkdirSync(cache)
    const old = join(cache, 'old.mjs')
    writeFileSync(old, '')
    const weekAgo = (Date.now() - 8 * 24 * 3600 * 1000) / 1000
    utimesSync(old, weekAgo, weekAgo)
    writeFileSync(join(cache, 'recent.mjs'), '')
    writeFileSync(join(dir, 'new.ts'), `import { image } from 'imagesmith'\nexport default image\n`)
    expect(await directScript(join(dir, 'new.ts'), cache, { imagesmith: 'file:///dist/index.js' })).toBeDefined()
    expect(readdirSync(cache)).toContain('recent.mjs')
    expect(readdirSync(cache)).not.toContain('old.mjs')
    expect(readdirSync(cache)).toHaveLength(2)
    sweepScriptCache(join(dir, 'no-such-dir'))
  })
})
