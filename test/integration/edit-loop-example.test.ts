/**
 * examples/edit-loop as its comment says to run it, offline, on a copy of its context: a cold build,
 * a no-op rebuild that runs nothing and leaves the archive alone, a one-file edit that rebuilds the
 * COPY (its reason naming the file) and the RUN on top, and that layer equal by digest to a cold
 * build of the edited files in an empty store.
 */
import { spawnSync } from 'node:child_process'
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc'])
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const example = join(root, 'examples', 'edit-loop')

let work: string
beforeAll(async () => {
  work = await tmpDir('ism-edit-loop-example-')
})
afterAll(cleanupTmpDirs, 60_000)

interface Vertex { description: string; cached: boolean; reason?: string }

describe.skipIf(bed.skip)('examples/edit-loop', () => {
  it('no-op rebuilds run nothing and keep the archive; a one-file edit rebuilds the COPY and the RUN, equal to a cold build', () => {
    const ctx = join(work, 'ctx')
    cpSync(join(example, 'app'), join(ctx, 'app'), { recursive: true })
    const dest = join(work, 'app.tar')
    const metadata = join(work, 'm.json')
    const build = (store: string, out = dest) => {
      // cwd = the checkout: its tsconfig maps 'imagesmith' to src/.
      const r = spawnSync(process.execPath, [bin, 'build', join(example, 'build.ts'), '--context', ctx, '-o', `type=oci,dest=${out}`, '--metadata-file', metadata, '--progress', 'quiet'], {
        cwd: root, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, store), BASE_IMAGE: `oci-archive:${busyboxArchive()}` }, timeout: 300_000,
      })
      expect(r.status, r.stderr).toBe(0)
      const doc = JSON.parse(readFileSync(metadata, 'utf8')) as { 'containerimage.digest': string; 'imagesmith.vertices': Vertex[] }
      const step = (prefix: string) => doc['imagesmith.vertices'].find((v) => v.description.startsWith(prefix))!
      return { digest: doc['containerimage.digest'], copy: step('COPY'), run: step('RUN') }
    }

    const cold = build('store')
    expect([cold.copy.cached, cold.run.cached]).toEqual([false, false])
    const archive = statSync(dest)

    const noop = build('store')
    expect(noop.digest).toBe(cold.digest)
    expect([noop.copy.cached, noop.run.cached]).toEqual([true, true])
    const after = statSync(dest)
    expect([after.ino, after.mtimeMs]).toEqual([archive.ino, archive.mtimeMs])

    writeFileSync(join(ctx, 'app', 'src', 'greet.js'), "exports.greet = (n) => 'hi ' + n\n")
    const edited = build('store')
    expect(edited.digest).not.toBe(cold.digest)
    expect([edited.copy.cached, edited.run.cached]).toEqual([false, false])
    expect(edited.copy.reason).toBe('1 context file changed: app/src/greet.js')

    const fresh = build('fresh-store', join(work, 'fresh.tar'))
    expect(fresh.digest).toBe(edited.digest)
  }, 300_000)
})
