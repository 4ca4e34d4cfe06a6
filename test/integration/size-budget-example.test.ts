/**
 * examples/size-budget as its comment says to run it, offline: `--budget wasted=1MB` fails typed and
 * writes no archive; without it the build writes one, and `inspect --layers --format json` names the
 * hidden archive with the step that added it and the one that deleted it.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc'])
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const example = join(root, 'examples', 'size-budget')

let work: string
beforeAll(async () => {
  work = await tmpDir('ism-size-budget-example-')
})
afterAll(cleanupTmpDirs, 60_000)

const cli = (args: string[]) =>
  // cwd = the checkout: its tsconfig maps 'imagesmith' to src/.
  spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), BASE_IMAGE: `oci-archive:${busyboxArchive()}` }, timeout: 300_000 })


describe.skipIf(bed.skip)('examples/size-budget', () => {
  it('a wasted budget of 1MB fails typed with no archive; inspect --layers names the hidden archive and both steps', () => {
    const dest = join(work, 'app.tar')
    const build = (extra: string[]) => cli(['build', join(example, 'build.ts'), '--context', example, '-o', `type=oci,dest=${dest}`, '--progress', 'quiet', ...extra])
    const over = build(['--budget', 'size=120MB,wasted=1MB,layers=30'])
    expect(over.status).toBe(1)
    expect(over.stderr).toMatch(/BUDGET_EXCEEDED/)
    expect(over.stderr).toContain('/tmp/assets.tar')
    expect(existsSync(dest)).toBe(false)
    const ok = build([])
    expect(ok.status, ok.stderr).toBe(0)
    const shown = cli(['inspect', dest, '--layers', '--format', 'json'])
    expect(shown.status, shown.stderr).toBe(0)
    const doc = JSON.parse(shown.stdout) as Record<string, unknown>
    const text = JSON.stringify(doc)
    expect(text).toContain('/tmp/assets.tar')
    expect(text).toContain('tar -cf /tmp/assets.tar')
    expect(text).toContain('rm /tmp/assets.tar')
  }, 300_000)
})
