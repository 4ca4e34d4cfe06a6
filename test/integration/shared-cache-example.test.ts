/**
 * examples/shared-cache as its comment says to run it, offline, with a cache directory: the first
 * build exports every stage (mode=max); a second build on an EMPTY store imports it, runs no step,
 * and gives the same digest.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc', 'tar'])
const root = resolve(__dirname, '../..')
const example = join(root, 'examples', 'shared-cache')

type Metadata = { 'containerimage.digest': string; 'imagesmith.vertices': { description: string; cached: boolean; key?: string }[] }

let work: string
beforeAll(async () => {
  work = await tmpDir('ism-shared-cache-example-')
})
afterAll(cleanupTmpDirs, 60_000)

function build(store: string, meta: string, cacheFlags: string[]) {
  // cwd = the checkout: its tsconfig maps 'imagesmith' to src/.
  const r = spawnSync(process.execPath, [join(root, 'bin', 'imagesmith.js'), 'build', join(example, 'build.ts'), '--context', example, '-o', `type=oci,dest=${join(work, 'app.tar')}`, '--metadata-file', meta, '--progress', 'quiet', ...cacheFlags], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, IMAGESMITH_CACHE: store, BASE_IMAGE: `oci-archive:${busyboxArchive()}` },
    timeout: 300_000,
  })
  expect(r.status, r.stderr).toBe(0)
  return { stderr: r.stderr, meta: JSON.parse(readFileSync(meta, 'utf8')) as Metadata }
}

describe.skipIf(bed.skip)('examples/shared-cache', () => {
  it('exports every stage to a directory; a build on an empty store that imports it runs no step and gives the same digest', () => {
    const dir = join(work, 'cache-dir')
    const first = build(join(work, 'store-a'), join(work, 'a.json'), ['--cache-to', `type=local,dest=${dir},mode=max`])
    expect(first.meta['imagesmith.vertices'].some((v) => v.description.startsWith('RUN sleep 1') && !v.cached)).toBe(true)
    expect(existsSync(join(dir, 'index.json'))).toBe(true)
    const second = build(join(work, 'store-b'), join(work, 'b.json'), ['--cache-from', `type=local,src=${dir}`])
    expect(second.stderr).not.toMatch(/warning/)
    expect(second.meta['imagesmith.vertices'].filter((v) => v.key !== undefined && !v.cached).map((v) => v.description)).toEqual([])
    expect(second.meta['containerimage.digest']).toBe(first.meta['containerimage.digest'])
  }, 300_000)
})
