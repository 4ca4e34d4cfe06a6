/**
 * Parallel branches of one base: sibling stages (COPY, ADD, RUN, WORKDIR, `copy({ from })` between
 * them) built many times at once, on fresh stores and on one warm store, in this process and in
 * several processes at once. Every build must succeed and give the same manifest digest, and no
 * temp file may be left in the store. Before the store had one atomic-write helper, the issue's
 * two-sibling case failed 10 out of 10 times with a raw `ENOENT: rename …/image-lookups/….tmp`.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readImageFile } from '../../src/ops/image-file.js'
import type { BuildOptions, LocalBuildResult } from '../../src/index.js'
import { tempWriterPid } from '../../src/store/atomic-write.js'
import { SWEPT_DIRS } from '../../src/store/layout.js'
import { Store } from '../../src/store/store.js'
import { eightSiblings, twoSiblings } from '../helpers/sibling-stages.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const repo = resolve(__dirname, '../..')
const bed = requireTools(['runc', 'tar'])

let work: string
let context: string
let baseRef: string
let stores = 0
const freshStore = () => join(work, 'stores', `s${stores++}`)
// Reproducible RUN layers (mtimes clamped), no network needed.
const opts = (cacheDir: string) => ({ cacheDir, context, sourceDateEpoch: 0, network: 'none' }) satisfies BuildOptions

/** Temp entries (ours, by name) left anywhere in a store's swept folders. */
function leftoverTemps(root: string): string[] {
  const store = new Store(root)
  return SWEPT_DIRS.flatMap((d) => {
    const dir = store.layout.dir(d)
    return existsSync(dir) ? readdirSync(dir).filter((n) => tempWriterPid(n, { stepDirs: d === 'tmp' }) !== undefined).map((n) => join(dir, n)) : []
  })
}

/** Layer-making steps of {@link eightSiblings}: 1+1+1+2+1+1+2+2 in the branches, 8 copies from them. */
const LAYER_STEPS = 19

function expectOneDigest(results: readonly LocalBuildResult[]): string {
  const digests = new Set(results.map((r) => r.digest))
  expect([...digests]).toHaveLength(1)
  return [...digests][0]!
}

/** Runs `node` on a script that imports the project's sources; resolves with its stdout lines. */
function nodeScript(script: string, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repo, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d))
    child.stderr.on('data', (d: Buffer) => (err += d))
    child.on('error', rej)
    child.on('exit', (code) => (code === 0 ? res(out.trim().split('\n')) : rej(new Error(`exit ${code}: ${err.slice(-2000)}`))))
  })
}

function cli(args: readonly string[]): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [join(repo, 'bin', 'imagesmith.js'), ...args], {
      env: { ...process.env, SOURCE_DATE_EPOCH: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d))
    child.stderr.on('data', (d: Buffer) => (err += d))
    child.on('error', rej)
    child.on('exit', (code) => (code === 0 ? res(out.trim()) : rej(new Error(`imagesmith exited ${code}: ${err.slice(-2000)}`))))
  })
}

beforeAll(async () => {
  work = await tmpDir('ism-siblings-')
  context = join(work, 'ctx')
  mkdirSync(join(context, 'etree', 'sub'), { recursive: true })
  writeFileSync(join(context, 'a'), 'file a\n')
  writeFileSync(join(context, 'b'), 'file b\n')
  writeFileSync(join(context, 'etree', 'one'), 'one\n')
  writeFileSync(join(context, 'etree', 'sub', 'two'), 'two\n')
  execFileSync('tar', ['-czf', join(context, 'e.tar.gz'), '-C', join(context, 'etree'), '.'])
  baseRef = `oci-archive:${busyboxArchive()}`
})
afterAll(() => cleanupTmpDirs())

describe.skipIf(bed.skip)('sibling stages from one base', () => {
  it("the issue's case: two COPY siblings, one copied into the other, succeeds on 10 fresh stores", async () => {
    const results: LocalBuildResult[] = []
    for (let i = 0; i < 10; i++) {
      const root = freshStore()
      results.push(await twoSiblings(baseRef).build(opts(root)))
      expect(leftoverTemps(root)).toEqual([])
    }
    expectOneDigest(results)
    const store = new Store(join(work, 'stores', 's0'))
    expect((await readImageFile(store, results[0]!.layers, '/app/a'))?.toString()).toBe('file a\n')
    expect((await readImageFile(store, results[0]!.layers, '/app/b'))?.toString()).toBe('file b\n')
  }, 60_000)

  let digest: string

  it('8 branches (COPY, ADD, RUN, WORKDIR, copy from a sibling): 20 builds on 20 fresh stores at once agree', async () => {
    const roots = Array.from({ length: 20 }, freshStore)
    const results = await Promise.all(roots.map((root) => eightSiblings(baseRef).build(opts(root))))
    digest = expectOneDigest(results)
    for (const r of results) expect(r.cacheHits).toBe(0)
    for (const root of roots) expect(leftoverTemps(root)).toEqual([])
    const store = new Store(roots[7]!)
    const read = async (p: string) => (await readImageFile(store, results[7]!.layers, p))?.toString()
    expect(await Promise.all(['/app/a', '/app/b', '/app/c.txt', '/w/a-in-w', '/e/one', '/e/sub/two', '/f/a', '/g/c.txt', '/g/g.txt', '/h/b-added'].map(read)))
      .toEqual(['file a\n', 'file b\n', 'c\n', 'file a\n', 'one\n', 'two\n', 'file a\n', 'c\n', 'g\n', 'file b\n'])
  }, 120_000)

  it('5 builds racing on one cold store, then 20 at once on it warm, all agree; the warm ones are all cache hits', async () => {
    const root = freshStore()
    const cold = await Promise.all(Array.from({ length: 5 }, () => eightSiblings(baseRef).build(opts(root))))
    expect(expectOneDigest(cold)).toBe(digest)
    const warm = await Promise.all(Array.from({ length: 20 }, () => eightSiblings(baseRef).build(opts(root))))
    expect(expectOneDigest(warm)).toBe(digest)
    for (const r of warm) expect(r.cacheHits).toBe(LAYER_STEPS)
    expect(leftoverTemps(root)).toEqual([])
  }, 120_000)

  /** A script that builds the 8 branches `n` times at once and prints `<digest> <cacheHits>` per build. */
  const buildScript = (n: number, cacheDir: (i: number) => string) => `
    import { eightSiblings } from ${JSON.stringify(join(repo, 'test', 'helpers', 'sibling-stages.ts'))}
    const dirs = ${JSON.stringify(Array.from({ length: n }, (_, i) => cacheDir(i)))}
    const results = await Promise.all(dirs.map((cacheDir) =>
      eightSiblings(${JSON.stringify(baseRef)}).build({ cacheDir, context: ${JSON.stringify(context)}, sourceDateEpoch: 0, network: 'none' })))
    for (const r of results) console.log(r.digest + ' ' + r.cacheHits)
  `

  it('4 processes at once, 5 builds each on fresh stores: all 20 agree with this process', async () => {
    const roots = Array.from({ length: 4 }, () => Array.from({ length: 5 }, freshStore))
    const lines = (await Promise.all(roots.map((r) => nodeScript(buildScript(5, (i) => r[i]!))))).flat()
    expect(lines).toHaveLength(20)
    expect(new Set(lines)).toEqual(new Set([`${digest} 0`]))
    for (const root of roots.flat()) expect(leftoverTemps(root)).toEqual([])
  }, 120_000)

  it('4 processes at once, 5 builds each on one warm store: all 20 agree and are served from the cache', async () => {
    const shared = freshStore()
    expect((await eightSiblings(baseRef).build(opts(shared))).digest).toBe(digest)
    const lines = (await Promise.all([0, 1, 2, 3].map(() => nodeScript(buildScript(5, () => shared))))).flat()
    expect(lines).toHaveLength(20)
    expect(new Set(lines)).toEqual(new Set([`${digest} ${LAYER_STEPS}`]))
    expect(leftoverTemps(shared)).toEqual([])
  }, 120_000)

  it('the CLI, 3 processes at once on one cold store, writes the same image', async () => {
    const shared = freshStore()
    const scriptPath = join(work, 'siblings.ts')
    writeFileSync(scriptPath, `import { eightSiblings } from ${JSON.stringify(join(repo, 'test', 'helpers', 'sibling-stages.ts'))}\nexport default eightSiblings(${JSON.stringify(baseRef)})\n`)
    const outs = [0, 1, 2].map((i) => join(work, `cli-${i}.tar`))
    const digests = await Promise.all(outs.map((out) =>
      cli(['build', scriptPath, '--context', context, '--cache-dir', shared, '--network', 'none', '-o', `type=oci,dest=${out}`, '--progress', 'quiet'])))
    expect(new Set(digests)).toEqual(new Set([digest]))
    for (const out of outs) expect(existsSync(out)).toBe(true)
    expect(readdirSync(work).filter((n) => n.includes('.partial') || n.includes('.tmp-'))).toEqual([])
    expect(leftoverTemps(shared)).toEqual([])
  }, 120_000)
})
