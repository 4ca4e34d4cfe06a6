/**
 * examples/registry-push as its comment says to run it, offline: busybox through a mirror on a
 * loopback docker-registry, pushed with two tags by the CLI (`--push`), then read by skopeo and
 * pulled and run by podman.
 */
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seedBases, startTestRegistry, type TestRegistry } from '../helpers/registry.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { createPodmanStore, requireTools, runTool } from '../helpers/tools.js'

const bed = requireTools(['docker-registry', 'skopeo', 'podman', 'runc'])
const root = resolve(__dirname, '../..')

describe.skipIf(bed.skip)('examples/registry-push', () => {
  let reg: TestRegistry
  let work: string
  beforeAll(async () => {
    work = await tmpDir('ism-rpx-')
    reg = await startTestRegistry()
    await seedBases(reg)
  }, 120_000)
  afterAll(async () => {
    await reg?.stop()
    await cleanupTmpDirs()
  }, 60_000)

  it('builds offline and pushes both tags; skopeo shows the digest, podman pulls and runs it', async () => {
    const example = join(root, 'examples', 'registry-push')
    const tags = [`${reg.host}/examples/site:1`, `${reg.host}/examples/site:latest`]
    // cwd = the checkout: its tsconfig maps 'imagesmith' to src/.
    const r = spawnSync(process.execPath, [join(root, 'bin', 'imagesmith.js'), 'build', join(example, 'build.ts'), '--context', example, '--registry-mirror', `docker.io=${reg.host}`, ...tags.flatMap((t) => ['-t', t]), '--push'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), DOCKER_CONFIG: join(work, 'docker') },
      timeout: 300_000,
    })
    expect(r.status, r.stderr).toBe(0)
    const digest = r.stdout.trim()
    expect(r.stderr).toContain(`pushed ${tags.join(', ')}: 3 blobs uploaded`)
    for (const t of ['1', 'latest']) {
      const inspect = await runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/examples/site:${t}`])
      expect((JSON.parse(inspect.stdout) as { Digest: string }).Digest).toBe(digest)
    }
    const podman = await createPodmanStore()
    try {
      await podman.podman(['pull', '--tls-verify=false', tags[1]!], { timeoutMs: 120_000 })
      const run = await podman.run(tags[1]!, { args: ['cat', '/srv/www/index.html'] })
      expect(run.stdout).toContain('Built from TypeScript, pushed to a registry.')
    } finally {
      await podman.cleanup()
    }
  }, 300_000)
})
