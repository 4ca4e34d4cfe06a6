/**
 * examples/docker-engine as its comment says to run it, offline: the CLI hands the build to a real
 * dockerd 20.10 started on a private socket (`--bridge=none`, so `--network none`); the image stays
 * in the engine with its tag, and runs there.
 */
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, startDockerd, type Dockerd } from '../helpers/tools.js'

const bed = requireTools(['runc', 'dockerd', '/usr/bin/docker'])
const root = resolve(__dirname, '../..')
const example = join(root, 'examples', 'docker-engine')

describe.skipIf(bed.skip)(`examples/docker-engine${bed.skip ? ` (skipped: ${bed.reason})` : ''}`, () => {
  let work: string
  let dockerd: Dockerd
  beforeAll(async () => {
    work = await tmpDir('ism-engine-example-')
    dockerd = await startDockerd()
  }, 120_000)
  afterAll(async () => {
    await dockerd?.stop()
    await cleanupTmpDirs()
  }, 60_000)

  it('hands the build to the engine, which keeps the image under its tag and runs it', async () => {
    // cwd = the checkout: its tsconfig maps 'imagesmith' to src/.
    const r = spawnSync(process.execPath, [join(root, 'bin', 'imagesmith.js'), 'build', join(example, 'build.ts'), '--context', example, '--engine', `docker,host=unix://${dockerd.socket}`, '--network', 'none', '-t', 'examples/engine-app:1', '--progress', 'plain'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), BASE_IMAGE: `oci-archive:${busyboxArchive()}` },
      timeout: 300_000,
    })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/RUN wc -l < greeting.txt > lines.txt/)
    const id = r.stdout.trim()
    const inspect = JSON.parse((await dockerd.docker(['image', 'inspect', 'examples/engine-app:1'])).stdout) as { Id: string }[]
    expect(inspect[0]!.Id).toBe(id)
    const run = await dockerd.docker(['run', '--rm', '--network', 'none', 'examples/engine-app:1'])
    expect(run.stdout).toBe('Built by the engine, written in TypeScript.\n')
    const lines = await dockerd.docker(['run', '--rm', '--network', 'none', 'examples/engine-app:1', 'cat', '/srv/lines.txt'])
    expect(lines.stdout.trim()).toBe('1')
  }, 300_000)
})
