/**
 * examples/monorepo, offline, through the CLI: the root build.ts derives one target per npm
 * workspace package, and `imagesmith bake` builds the three in one solve with the base step once.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const example = join(root, 'examples', 'monorepo')
const bed = requireTools(['runc', 'tar'])

let work: string

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // cwd = the repo: tsconfig's paths map 'imagesmith' (the example's import) to src/.
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  return new Promise((res) => child.on('exit', (code) => res({ code, stdout, stderr })))
}

beforeAll(async () => {
  work = await tmpDir('ism-monorepo-example-')
})
afterAll(cleanupTmpDirs, 60_000)

describe.skipIf(bed.skip)('examples/monorepo', () => {
  it('bakes one image per workspace package in one solve, the shared base step once', async () => {
    const out = join(work, 'images')
    const meta = join(work, 'metadata.json')
    const r = await cli(['bake', 'examples/monorepo/build.ts', '--context', example, '--out-dir', out, '--metadata-file', meta, '--progress', 'plain'],
      { BASE_IMAGE: `oci-archive:${busyboxArchive()}`, IMAGESMITH_CACHE: join(work, 'cache'), SOURCE_DATE_EPOCH: '0' })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim().split('\n').map((l) => l.split(' ')[0])).toEqual(['api', 'web', 'worker'])
    expect(r.stderr.match(/^#\d+ .*RUN echo 'app:x.*$/gm)).toEqual([expect.stringMatching(/^#\d+ \[api,web,worker\] RUN echo 'app:x/)])
    const doc = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, { 'imagesmith.layers': string[]; 'containerimage.digest': string }>
    expect(Object.keys(doc)).toEqual(['api', 'web', 'worker'])
    expect(new Set(Object.values(doc).map((m) => m['imagesmith.layers'].slice(0, 2).join()))).toHaveProperty('size', 1)
    for (const t of ['api', 'web', 'worker']) expect(existsSync(join(out, `${t}.tar`))).toBe(true)
  })
})
