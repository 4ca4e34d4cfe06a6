/**
 * examples/dockerfile-import, offline: its build.ts (fromDockerfile + one more step) through the CLI
 * with BASE_IMAGE pointing at the busybox archive, and its Dockerfile through `imagesmith build -f`;
 * the image runs in podman.
 */
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { layoutConfig } from '../helpers/image-tree.js'
import { podmanCleanup, podmanLoadAndRun, requireTools, runTool } from '../helpers/tools.js'

const bed = requireTools(['podman', 'skopeo', 'runc'])
const root = resolve(__dirname, '../..')
const example = join(root, 'examples', 'dockerfile-import')

describe.skipIf(bed.skip)('examples/dockerfile-import', () => {
  let work: string
  beforeAll(async () => {
    work = await tmpDir('ism-dfx-')
  })
  afterAll(async () => {
    await podmanCleanup()
    await cleanupTmpDirs()
  })
  // cwd = the checkout: its tsconfig maps 'imagesmith' to src/.
  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [join(root, 'bin', 'imagesmith.js'), ...args], {
      cwd: root, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), ...env }, timeout: 300_000,
    })

  it('build.ts builds the Dockerfile (extended) and the image runs', async () => {
    const out = join(work, 'example.tar')
    const r = cli(['build', join(example, 'build.ts'), '--context', example, '-t', 'dockerfile-import:2', '-o', `type=oci,dest=${out}`, '--network', 'none'], { BASE_IMAGE: `oci-archive:${busyboxArchive()}` })
    expect(r.status, r.stderr).toBe(0)
    // The config blob itself: skopeo's parsed view drops Docker's Healthcheck.
    await runTool('skopeo', ['copy', `oci-archive:${out}`, `oci:${join(work, 'layout')}:t`])
    const config = layoutConfig(join(work, 'layout'), 't') as { config: Record<string, unknown> }
    expect(config.config).toMatchObject({
      User: '1000', WorkingDir: '/opt/app', Entrypoint: ['/opt/app/bin/greet'], ExposedPorts: { '8080/tcp': {} },
      Labels: { 'org.opencontainers.image.version': '2.0' },
      Healthcheck: { Test: ['CMD', '/opt/app/bin/greet', '--check'], Interval: 30e9, StartInterval: 2e9 },
    })
    const run = await podmanLoadAndRun(out)
    expect(run.stdout.trim()).toBe('hello from greet 2.0')
    const motd = await podmanLoadAndRun(out, { entrypoint: ['cat'], args: ['/etc/motd'] })
    expect(motd.stdout).toBe('greet 2.0, installed in /opt/app\n')
  }, 300_000)

  it('the Dockerfile itself builds with imagesmith build -f and --build-arg', async () => {
    const out = join(work, 'plain.tar')
    const r = cli(['build', '-f', join(example, 'Dockerfile'), '--build-arg', `BASE=oci-archive:${busyboxArchive()}`, '-o', `type=oci,dest=${out}`, '--network', 'none', example])
    expect(r.status, r.stderr).toBe(0)
    const run = await podmanLoadAndRun(out)
    expect(run.stdout.trim()).toBe('hello from greet 1.0')
  }, 300_000)
})
