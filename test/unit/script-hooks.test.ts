/** The build-script module hooks as plain functions: aliases, TypeScript siblings, the content-keyed transform cache. */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
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
