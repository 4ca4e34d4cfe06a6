/**
 * Build scripts loaded by the CLI as users run it (bin/imagesmith.js, real processes): from a fresh
 * dist/ (the test setup builds it) TypeScript goes through our module hooks, with `imagesmith`
 * resolving to the CLI's own entry; IMAGESMITH_CLI_FROM=src runs the sources through tsx.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { distIsFresh } from '../../bin/dist-freshness.js'
import { runUnderSubreaper } from '../helpers/subreaper.js'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
let work: string
let cache: string

const cli = (args: string[], env: Record<string, string> = {}) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: cache, ...env }, timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}
const build = (script: string, env: Record<string, string> = {}) =>
  cli(['build', join(work, script), '--context', join(work, 'ctx'), '-o', `type=oci,dest=${join(work, 'out.tar')}`, '--progress', 'quiet'], env)
const transformed = () => readdirSync(join(cache, 'scripts')).filter((f) => f.endsWith('.mjs')).sort()

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ism-loader-'))
  cache = join(work, 'cache')
  mkdirSync(join(work, 'ctx'))
  writeFileSync(join(work, 'ctx', 'hello.txt'), 'hi\n')
  // A sibling module imported the NodeNext way ('./x.js' names x.ts), an enum, a type-only import.
  writeFileSync(join(work, 'labels.ts'), `export enum Tier { Gold = 'gold' }\nexport interface Opts { tier: Tier }\nexport const label = (o: Opts): string => 'tier-' + o.tier\n`)
  writeFileSync(join(work, 'build.ts'), [
    `import { image, type ImageBuilder } from 'imagesmith'`,
    `import { Tier, label, type Opts } from './labels.js'`,
    `import { writeFileSync } from 'node:fs'`,
    `const opts: Opts = { tier: Tier.Gold }`,
    `writeFileSync(${JSON.stringify(join(work, 'resolved.txt'))}, import.meta.resolve('imagesmith') + '\\n' + __dirname)`,
    `const b: ImageBuilder = image().from('scratch').copy('hello.txt', '/hello.txt').label('tier', label(opts))`,
    `export default b`,
  ].join('\n'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('build script loader', () => {
  it('the test setup left a fresh dist/, so the CLI runs from it', () => {
    expect(distIsFresh(root)).toBe(true)
  })

  it('loads a TS script (enum, type imports, a ./x.js sibling) with imagesmith resolved to the CLI’s own entry, and caches the transform', () => {
    const r = build('build.ts')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const digest = r.stdout.trim()
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/)
    const [resolved, dir] = readFileSync(join(work, 'resolved.txt'), 'utf8').split('\n')
    expect(resolved).toBe(pathToFileURL(join(root, 'dist', 'index.js')).href)
    expect(dir).toBe(work)
    const files = transformed()
    expect(files).toHaveLength(2)

    // Unchanged script: same image, no new transform.
    expect(build('build.ts').stdout.trim()).toBe(digest)
    expect(transformed()).toEqual(files)

    // An edited script is transformed again (cache keyed by content), and its change shows.
    writeFileSync(join(work, 'labels.ts'), readFileSync(join(work, 'labels.ts'), 'utf8').replace("'gold'", "'platinum'"))
    const edited = build('build.ts')
    expect(edited.code).toBe(0)
    expect(edited.stdout.trim()).not.toBe(digest)
    expect(transformed()).toHaveLength(3)
    const inspect = cli(['inspect', join(work, 'out.tar')])
    expect(inspect.stdout).toContain('tier=tier-platinum')
  })

  it('a script importing the checkout’s src/index.ts by path gets the CLI’s entry; from the sources (tsx) it builds the same image', () => {
    const src = join(root, 'src', 'index.ts')
    writeFileSync(join(work, 'by-path.ts'), `import { image } from ${JSON.stringify(src)}\n` +
      // tsx compiles a script outside any "type": "module" package to CommonJS, without import.meta.resolve.
      `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(join(work, 'by-path.txt'))}, typeof import.meta.resolve === 'function' ? import.meta.resolve(${JSON.stringify(src)}) : 'tsx')\n` +
      `export default image().from('scratch').copy('hello.txt', '/hello.txt').env('K', 'v')\n`)
    const fromDist = build('by-path.ts')
    expect(fromDist.code).toBe(0)
    expect(readFileSync(join(work, 'by-path.txt'), 'utf8')).toBe(pathToFileURL(join(root, 'dist', 'index.js')).href)
    const fromSrc = build('by-path.ts', { IMAGESMITH_CLI_FROM: 'src' })
    expect(fromSrc.code).toBe(0)
    expect(fromSrc.stdout.trim()).toBe(fromDist.stdout.trim())
    expect(readFileSync(join(work, 'by-path.txt'), 'utf8')).toBe('tsx')
  })

  it('a script importing only imagesmith and builtins runs compiled from the cache, with its own import.meta.url and __dirname', () => {
    writeFileSync(join(work, 'alone.ts'), [
      `import { image } from 'imagesmith'`,
      `import { writeFileSync } from 'node:fs'`,
      `enum Port { Http = 8080 }`,
      `writeFileSync(${JSON.stringify(join(work, 'alone.txt'))}, [import.meta.url, __dirname].join('\\n'))`,
      `export default image().from('scratch').copy('hello.txt', '/hello.txt').expose(Port.Http)`,
    ].join('\n'))
    const r = build('alone.ts')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(readFileSync(join(work, 'alone.txt'), 'utf8')).toBe(`${pathToFileURL(join(work, 'alone.ts')).href}\n${work}`)
    const compiled = readdirSync(join(cache, 'scripts')).filter((f) => f.endsWith('.mjs')).map((f) => readFileSync(join(cache, 'scripts', f), 'utf8'))
    expect(compiled.filter((c) => c.includes(`from ${JSON.stringify(pathToFileURL(join(root, 'dist', 'index.js')).href)}`))).toHaveLength(1)
    expect(build('alone.ts').stdout).toBe(r.stdout)
  })

  it('a JavaScript (ESM) script outside any package gets imagesmith too: the CLI’s own entry', () => {
    writeFileSync(join(work, 'plain.mjs'), `import { image } from 'imagesmith'\nimport { writeFileSync } from 'node:fs'\n` +
      `writeFileSync(${JSON.stringify(join(work, 'plain.txt'))}, import.meta.resolve('imagesmith'))\n` +
      `export default image().from('scratch').copy('hello.txt', '/hello.txt')\n`)
    const r = build('plain.mjs')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(readFileSync(join(work, 'plain.txt'), 'utf8')).toBe(pathToFileURL(join(root, 'dist', 'index.js')).href)
  })

  it('a syntax error, a throwing script and a missing import are BUILD_SCRIPT_INVALID naming the script', () => {
    writeFileSync(join(work, 'syntax.ts'), `import { image } from 'imagesmith'\nexport default image(.from('scratch')\n`)
    writeFileSync(join(work, 'throws.ts'), `import { image } from 'imagesmith'\nthrow new Error('no base today')\nexport default image()\n`)
    writeFileSync(join(work, 'missing.ts'), `import { image } from './nowhere.js'\nexport default image()\n`)
    for (const [name, says] of [['syntax.ts', /Expected|Unexpected/], ['throws.ts', /no base today/], ['missing.ts', /nowhere/]] as const) {
      const r = build(name)
      expect(r.code, name).toBe(1)
      expect(r.stderr, name).toContain(`error [BUILD_SCRIPT_INVALID]: cannot load build script ${join(work, name)}`)
      expect(r.stderr, name).toMatch(says)
    }
  })

  it('the CLI reaps the esbuild processes that compiled a script before it exits, none is left to init', () => {
    // Each in a fresh cache, so each is compiled: one by the CLI's own thread (a script importing only
    // imagesmith), one through the module hooks' thread too (a relative import), one that fails to compile.
    writeFileSync(join(work, 'reap-direct.ts'), `import { image } from 'imagesmith'\nconst p: string = 'hello.txt'\nexport default image().from('scratch').copy(p, '/hello.txt')\n`)
    writeFileSync(join(work, 'reap-hooks.ts'), `import { image } from 'imagesmith'\nimport { label } from './labels.js'\nexport default image().from('scratch').copy('hello.txt', '/x').label('l', label({ tier: 'gold' as never }))\n`)
    writeFileSync(join(work, 'reap-broken.ts'), `import { image } from 'imagesmith'\nexport default image(.from('scratch')\n`)
    for (const [name, code] of [['reap-direct.ts', 0], ['reap-hooks.ts', 0], ['reap-broken.ts', 1]] as const) {
      const own = join(work, `cache-${name}`)
      const r = runUnderSubreaper([process.execPath, bin, 'build', join(work, name), '--context', join(work, 'ctx'), '-o', `type=oci,dest=${join(work, 'reap.tar')}`, '--progress', 'quiet'], {
        cwd: work, env: { ...process.env, IMAGESMITH_CACHE: own },
      })
      expect(r.code, `${name}: ${r.stderr}`).toBe(code)
      // esbuild did run: its output (or the direct path's refusal) is in the cache, or its syntax error was reported.
      if (code === 0) expect(readdirSync(join(own, 'scripts')).length, name).toBeGreaterThan(0)
      else expect(r.stderr, name).toMatch(/BUILD_SCRIPT_INVALID[^]*(?:Expected|Unexpected)/)
      expect(r.orphans, name).toEqual([])
    }
  })

  it('a script without a builder export is refused with its path', () => {
    writeFileSync(join(work, 'nothing.ts'), `export const x: number = 1\n`)
    const r = build('nothing.ts')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`error [BUILD_SCRIPT_INVALID]: ${join(work, 'nothing.ts')} must default-export an image builder`)
  })
})

describe('CommonJS build scripts', () => {
  let proj: string
  let dump: string
  beforeAll(() => {
    // A user's CommonJS project (no "type": "module") with imagesmith installed: a second copy is there to load.
    proj = join(work, 'cjs-project')
    mkdirSync(join(proj, 'node_modules'), { recursive: true })
    writeFileSync(join(proj, 'package.json'), '{ "name": "cjs-project" }\n')
    spawnSync('ln', ['-s', root, join(proj, 'node_modules', 'imagesmith')])
    writeFileSync(join(proj, 'who.cts'), `export const who: string = 'cts-helper'\n`)
    writeFileSync(join(proj, 'build.cts'), `import { image } from 'imagesmith'\nimport { who } from './who'\nexport default image().from('scratch').env('WHO', who)\n`)
    writeFileSync(join(proj, 'required.ts'), `const { image } = require('imagesmith')\nconst { who } = require('./who.cts')\nexport default image().from('scratch').env('WHO', who)\n`)
    // Preloaded into the CLI: on exit, which CommonJS modules of imagesmith's dist/ were loaded.
    dump = join(work, 'dump-cjs.cjs')
    writeFileSync(dump, `process.on('exit', () => process.stderr.write('CJS ' + JSON.stringify(Object.keys(require.cache).filter((k) => k.includes('/dist/') && !k.includes('/node_modules/'))) + '\\n'))\n`)
  })

  for (const script of ['build.cts', 'required.ts']) {
    it(`${script}: require('imagesmith') is the CLI's own copy, never a second one`, () => {
      const r = spawnSync(process.execPath, ['-r', dump, bin, 'graph', join(proj, script)], { cwd: proj, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: cache }, timeout: 120_000 })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toContain('ENV WHO=cts-helper')
      const loaded = JSON.parse(r.stderr.split('\n').find((l) => l.startsWith('CJS '))!.slice(4)) as string[]
      // The ES module entry itself (require of an ES module shares the CLI's instance); no index.cjs, no tsx namespace copy.
      expect(loaded.filter((k) => k.endsWith('.cjs') || k.includes('?namespace='))).toEqual([])
    })
  }
})
