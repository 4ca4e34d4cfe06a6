/**
 * Pushing to a real docker-registry (distribution 2.8) on loopback: every tag, HEAD skips,
 * cross-repository mounts from the base's repository, monolithic and chunked uploads, basic and
 * token auth. skopeo and podman read what was pushed.
 */
import { statSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image, type LocalBuildResult } from '../../src/index.js'
import { main } from '../../src/cli/main.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { createPodmanStore, requireTools, runTool, type PodmanStore } from '../helpers/tools.js'
import { seedBases, startTestRegistry, type SeededBases, type TestRegistry } from '../helpers/registry.js'

const bed = requireTools(['docker-registry', 'skopeo', 'podman', 'runc', 'htpasswd', 'openssl'])

async function skopeoDigest(reg: TestRegistry, ref: string): Promise<string> {
  const creds = reg.auth ? ['--creds', `${reg.auth.username}:${reg.auth.password}`] : []
  const r = await runTool('skopeo', ['inspect', '--tls-verify=false', ...creds, `docker://${reg.host}/${ref}`])
  return (JSON.parse(r.stdout) as { Digest: string }).Digest
}

function cliIo() {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } }
}

describe.skipIf(bed.skip)('registry output (push)', () => {
  let work: string
  let context: string
  let reg: TestRegistry
  let seeded: SeededBases
  let app: LocalBuildResult
  const configDir = () => join(work, 'docker-config-none')

  const appImage = (host: string) =>
    image()
      .from(`${host}/library/busybox`)
      .copy('hello.txt', '/hello.txt')
      .cmd(['cat', '/hello.txt'])

  beforeAll(async () => {
    work = await tmpDir('ism-push-')
    context = join(work, 'ctx')
    await mkdir(context, { recursive: true })
    await writeFile(join(context, 'hello.txt'), 'hello from a pushed image\n')
    // A layer that is all new content (random bytes): its size is what the child push must move.
    await writeFile(join(context, 'payload.bin'), Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 7919 + (i >> 3)) & 0xff)))
    reg = await startTestRegistry()
    seeded = await seedBases(reg)
  }, 180_000)

  afterAll(async () => {
    await reg?.stop()
    await cleanupTmpDirs()
  }, 60_000)

  it('pushes every tag; skopeo sees the built digest; the base layer is mounted, not uploaded', async () => {
    app = await appImage(reg.host).build({
      context,
      cacheDir: join(work, 'cache'),
      tags: [`${reg.host}/team/app:1`, `${reg.host}/team/app:2`],
      output: { type: 'registry' },
      registry: { configDir: configDir() },
    })
    expect(app.bases).toEqual([{ ref: `${reg.host}/library/busybox:latest`, digest: seeded.busybox }])
    expect(app.ref).toBe(`${reg.host}/team/app:1`)
    expect(app.pushed?.tags).toEqual([`${reg.host}/team/app:1`, `${reg.host}/team/app:2`])
    expect(await skopeoDigest(reg, 'team/app:1')).toBe(app.digest)
    expect(await skopeoDigest(reg, 'team/app:2')).toBe(app.digest)
    // busybox's one layer comes from library/busybox by mount; the COPY layer and the config are uploaded.
    expect(app.pushed).toMatchObject({ mounted: 1, blobs: 2, skipped: 0 })
    const configSize = (await readFile(join(work, 'cache', 'blobs', 'sha256', app.configDigest.slice(7)))).length
    expect(app.pushed?.bytes).toBe(app.layers[1]!.size + configSize)
  }, 180_000)

  it('a second push of the same image skips every blob (HEAD) and moves no bytes', async () => {
    const again = await appImage(reg.host).build({
      context,
      cacheDir: join(work, 'cache'),
      tags: [`${reg.host}/team/app:1`],
      output: { type: 'registry' },
      registry: { configDir: configDir() },
    })
    expect(again.digest).toBe(app.digest)
    expect(again.pushed).toMatchObject({ blobs: 0, bytes: 0, mounted: 0, skipped: 3 })
  }, 120_000)

  it('tags in two repositories of one registry: the second mounts every blob from the first', async () => {
    const r = await appImage(reg.host).build({
      context,
      cacheDir: join(work, 'cache'),
      tags: [`${reg.host}/team/first:1`, `${reg.host}/team/second:1`],
      output: { type: 'registry' },
      registry: { configDir: configDir() },
    })
    // first: busybox's layer mounted from library/busybox, the COPY layer and config uploaded; second: all three mounted.
    expect(r.pushed).toMatchObject({ blobs: 2, mounted: 4, skipped: 0 })
    expect(await skopeoDigest(reg, 'team/second:1')).toBe(r.digest)
  }, 120_000)

  it('a child of the pushed image, pushed to the same registry, uploads only its new layer', async () => {
    const child = await image()
      .from(`${reg.host}/team/app:1`)
      .copy('payload.bin', '/payload.bin')
      .build({ context, cacheDir: join(work, 'cache'), tags: [`${reg.host}/team/child:1`], output: { type: 'registry' }, registry: { configDir: configDir() } })
    expect(child.layers).toHaveLength(3)
    const newLayer = child.layers[2]!
    const configSize = statSync(join(work, 'cache', 'blobs', 'sha256', child.configDigest.slice(7))).size
    expect(child.pushed).toMatchObject({ mounted: 2, blobs: 2, skipped: 0 })
    expect(child.pushed?.bytes).toBe(newLayer.size + configSize)
    expect(await skopeoDigest(reg, 'team/child:1')).toBe(child.digest)
  }, 180_000)

  it('uploads in chunks (PATCH with Content-Range) when asked, with the same digest', async () => {
    const r = await image()
      .from(`oci-archive:${busyboxArchive()}`)
      .copy('payload.bin', '/payload.bin')
      .build({
        context,
        cacheDir: join(work, 'cache'),
        tags: [`${reg.host}/team/chunked:1`],
        output: { type: 'registry', upload: 'chunked', chunkSize: 64 * 1024 },
        registry: { configDir: configDir() },
      })
    // No registry base: nothing to mount from, the registry has none of it in this repository.
    expect(r.pushed).toMatchObject({ mounted: 0, blobs: 3, skipped: 0 })
    expect(r.pushed?.bytes).toBe(r.layers.reduce((n, l) => n + l.size, 0) + statSync(join(work, 'cache', 'blobs', 'sha256', r.configDigest.slice(7))).size)
    expect(await skopeoDigest(reg, 'team/chunked:1')).toBe(r.digest)
  }, 180_000)

  it('podman pulls and runs the pushed image', async () => {
    const podman: PodmanStore = await createPodmanStore()
    try {
      await podman.podman(['pull', '--tls-verify=false', `${reg.host}/team/app:2`], { timeoutMs: 120_000 })
      const digest = (await podman.podman(['image', 'inspect', '--format', '{{.Digest}}', `${reg.host}/team/app:2`])).stdout.trim()
      expect(digest).toBe(app.digest)
      const run = await podman.run(`${reg.host}/team/app:2`)
      expect(run.stdout).toBe('hello from a pushed image\n')
    } finally {
      await podman.cleanup()
    }
  }, 180_000)

  it('the CLI pushes with --push and -o type=registry, and a build without tags is refused', async () => {
    const script = join(work, 'build.ts')
    await writeFile(
      script,
      `import { image } from ${JSON.stringify(join(process.cwd(), 'src/index.ts'))}\n` +
        `export default image().from(${JSON.stringify(`${reg.host}/library/busybox`)}).copy('hello.txt', '/hello.txt').cmd(['cat', '/hello.txt'])\n`,
    )
    const prevConfig = process.env['DOCKER_CONFIG']
    process.env['DOCKER_CONFIG'] = configDir()
    try {
      const a = cliIo()
      expect(await main(['build', script, '--context', context, '--cache-dir', join(work, 'cache'), '-t', `${reg.host}/team/cli:1`, '--push'], a.io)).toBe(0)
      expect(a.err.join('')).toMatch(/pushed .*team\/cli:1: 2 blobs uploaded .*, 1 mounted, 0 already there/)
      expect(await skopeoDigest(reg, 'team/cli:1')).toBe(a.out.join('').trim())
      const b = cliIo()
      expect(await main(['build', script, '--context', context, '--cache-dir', join(work, 'cache'), '-t', `${reg.host}/team/cli:2`, '-o', 'type=registry,upload=monolithic'], b.io)).toBe(0)
      expect(b.err.join('')).toMatch(/0 blobs uploaded .*, 0 mounted, 3 already there/)
      const c = cliIo()
      expect(await main(['build', script, '--context', context, '--cache-dir', join(work, 'cache'), '--push'], c.io)).toBe(1)
      expect(c.err.join('')).toContain('error [OUTPUT_INVALID]: a registry output needs at least one tag')
    } finally {
      if (prevConfig === undefined) delete process.env['DOCKER_CONFIG']
      else process.env['DOCKER_CONFIG'] = prevConfig
    }
  }, 180_000)
})
