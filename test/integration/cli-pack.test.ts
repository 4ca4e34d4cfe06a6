/**
 * The package as npm ships it: `npm pack` of the checkout, installed into a fresh project offline,
 * then used the ways users use it (ESM import, CJS require, a strict type-check, `npx imagesmith
 * build`). The tarball has no src/: the CLI must run its dist/ build.
 *
 * dist/ with its declarations fresh (as `npm ci` leaves it through `prepare`): packed as it is, with
 * --ignore-scripts. Otherwise (the test setup builds dist/ without declarations) a copy of the
 * sources is packed with scripts, so `prepare` builds it there, never under the tests running now.
 *
 * Offline install: a cache filled by `npm ci` holds the dependencies' tarballs but not their registry
 * metadata, so the project gets a lockfile with the checkout's resolved versions of the runtime
 * dependencies, and npm takes each tarball from the cache by its integrity.
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { distIsFresh } from '../../bin/dist-freshness.js'
import { image } from '../../src/index.js'

const root = resolve(__dirname, '../..')
const DECLARATIONS = ['index.d.ts', 'index.d.cts', 'codegen.d.ts', 'codegen.d.cts']

let work: string
let project: string
let tarball: string
let packedFrom: 'dist' | 'prepare'

/** npm as a user runs it: without the npm_* variables of an enclosing `npm test` (npm_config_local_prefix would point npm at the checkout). */
function npmEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || /^npm_config_(cache|userconfig|registry)$/i.test(k)) env[k] = v
  return { ...env, ...extra }
}

function run(cmd: string, args: string[], cwd: string, env = npmEnv()): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 300_000 })
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** `npm pack --json` into `work`; the tarball's path. */
function pack(dir: string, ignoreScripts: boolean): string {
  const out = ok(run('npm', ['pack', '--json', '--pack-destination', work, ...(ignoreScripts ? ['--ignore-scripts'] : [])], dir), 'npm pack')
  // With scripts, the build's own output may come before the JSON.
  const json = JSON.parse(out.slice(out.indexOf('[\n'))) as { filename: string }[]
  return join(work, json[0]!.filename)
}

/** The runtime dependencies' entries of the checkout's lockfile, for a project that has none of its own. */
function projectLock(): string {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  const packages: Record<string, unknown> = { '': { name: 'consumer', version: '1.0.0' } }
  for (const [path, entry] of Object.entries(lock.packages)) if (path !== '' && !entry.dev) packages[path] = entry
  return JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2)
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ism-pack-'))
  if (distIsFresh(root) && DECLARATIONS.every((f) => existsSync(join(root, 'dist', f)))) {
    packedFrom = 'dist'
    tarball = pack(root, true)
  } else {
    // A clone's files (mtimes kept: the copy's dist/ would be as stale as ours), the checkout's node_modules.
    packedFrom = 'prepare'
    const clone = join(work, 'clone')
    mkdirSync(clone)
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsup.config.ts', 'README.md', 'src', 'bin']) {
      cpSync(join(root, f), join(clone, f), { recursive: true, preserveTimestamps: true })
    }
    symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'))
    tarball = pack(clone, false)
  }

  project = join(work, 'consumer')
  mkdirSync(join(project, 'ctx'), { recursive: true })
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  writeFileSync(join(project, 'package-lock.json'), projectLock())
  ok(run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], project), 'npm install --offline')
}, 600_000)
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe(`the packed package, installed offline into a fresh project`, () => {
  it('holds the built dist/ (ESM, CJS, declarations, the CLI and its helpers) and bin/, and no sources', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean)
    for (const f of ['index.js', 'index.cjs', 'codegen.js', 'codegen.cjs', ...DECLARATIONS, 'cli.js', 'script-hooks.js', 'rootless-worker.js']) {
      expect(files, `${f} (packed from ${packedFrom})`).toContain(`package/dist/${f}`)
    }
    expect(files).toContain('package/bin/imagesmith.js')
    expect(files.filter((f) => f.startsWith('package/src/'))).toEqual([])
    expect(existsSync(join(project, 'node_modules', 'imagesmith', 'src'))).toBe(false)
  })

  it('imports as ESM and requires as CJS: both entries build the same graph as the sources', () => {
    const expected = image().from('scratch').env('A', '1').graph().outputs[0]!.vertex
    writeFileSync(join(project, 'esm.mjs'), [
      `import { image } from 'imagesmith'`,
      `import { convertDockerfile } from 'imagesmith/codegen'`,
      `console.log(JSON.stringify({ at: import.meta.resolve('imagesmith'), output: image().from('scratch').env('A', '1').graph().outputs[0].vertex, codegen: typeof convertDockerfile }))`,
    ].join('\n'))
    writeFileSync(join(project, 'cjs.cjs'), [
      `const { image } = require('imagesmith')`,
      `const { convertDockerfile } = require('imagesmith/codegen')`,
      `console.log(JSON.stringify({ at: require.resolve('imagesmith'), output: image().from('scratch').env('A', '1').graph().outputs[0].vertex, codegen: typeof convertDockerfile }))`,
    ].join('\n'))
    const esm = JSON.parse(ok(run(process.execPath, ['esm.mjs'], project), 'esm.mjs'))
    const cjs = JSON.parse(ok(run(process.execPath, ['cjs.cjs'], project), 'cjs.cjs'))
    expect(esm).toEqual({ at: `file://${join(project, 'node_modules', 'imagesmith', 'dist', 'index.js')}`, output: expected, codegen: 'function' })
    expect(cjs).toEqual({ at: join(project, 'node_modules', 'imagesmith', 'dist', 'index.cjs'), output: expected, codegen: 'function' })
  })

  it('type-checks under strict tsc from an ESM and a CJS module', () => {
    const body = [
      `import { image, type ImageBuilder, type BuildResult } from 'imagesmith'`,
      `import { convertDockerfile } from 'imagesmith/codegen'`,
      `const b: ImageBuilder = image().from('scratch').copy('a.txt', '/a.txt')`,
      `export const build = (): Promise<BuildResult> => b.build({ output: { type: 'oci', dest: 'out.tar' } })`,
      `export const convert: typeof convertDockerfile = convertDockerfile`,
      // Real types, not any: a wrong call must be an error.
      `// @ts-expect-error from() takes a reference, not a number`,
      `image().from(42)`,
    ].join('\n')
    writeFileSync(join(project, 'check.mts'), body)
    writeFileSync(join(project, 'check.cts'), body)
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        // skipLibCheck: checking all of @types/node too costs 4x the time (3 s -> 12 s measured); the
        // declarations' own imports are node builtins and their siblings, and the uses below are checked.
        strict: true, noEmit: true, skipLibCheck: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022',
        types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
      },
      files: ['check.mts', 'check.cts'],
    }))
    const tsc = run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], project)
    expect(tsc.stdout + tsc.stderr).toBe('')
    expect(tsc.status).toBe(0)
  })

  it('npx imagesmith build runs the packed dist/ (no sources to fall back on) and writes an OCI archive', () => {
    writeFileSync(join(project, 'ctx', 'hello.txt'), 'hi\n')
    writeFileSync(join(project, 'build.ts'), `import { image } from 'imagesmith'\nconst to: string = '/hello.txt'\nexport default image().from('scratch').copy('hello.txt', to)\n`)
    const out = join(project, 'out', 'img.tar')
    const env = npmEnv({ IMAGESMITH_CACHE: join(work, 'cache') })
    const args = ['--offline', '--no-install', 'imagesmith', 'build', 'build.ts', '--context', 'ctx', '-o', `type=oci,dest=${out}`, '--progress', 'quiet']
    const r = run('npx', args, project, env)
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/)
    const members = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n')
    expect(members).toEqual(expect.arrayContaining(['oci-layout', 'index.json']))
    // The switch to the sources finds none here: still dist/, the same image.
    const again = run('npx', args, project, { ...env, IMAGESMITH_CLI_FROM: 'src' })
    expect(again.stderr).toBe('')
    expect(again.stdout).toBe(r.stdout)
  })
})
