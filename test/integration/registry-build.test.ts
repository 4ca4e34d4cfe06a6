/**
 * Builds FROM registry images, offline: `from('busybox')` and `from('debian')` resolve through a
 * mirror on loopback (a real docker-registry seeded with the provisioned bases), by build option,
 * CLI flag and environment variable; RUN steps run on the pulled layers; the output loads and runs
 * in podman; the result records each base's digest.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { filesContaining, seedBases, skopeoPush, startProxy, startTestRegistry, type SeededBases, type TestProxy, type TestRegistry } from '../helpers/registry.js'
import { busyboxArchive, cleanupTmpDirs } from '../helpers/testbed.js'
import { podmanCleanup, podmanLoadAndRun, requireTools } from '../helpers/tools.js'

const bed = requireTools(['docker-registry', 'skopeo', 'htpasswd', 'openssl', 'podman', 'runc'])
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const api = join(root, 'src', 'index.ts')

describe.skipIf(bed.skip)('builds FROM a registry', () => {
  let reg: TestRegistry
  let basic: TestRegistry
  let seeded: SeededBases
  let mirror: TestProxy
  let work: string
  let pinned: string

  const cli = (args: string[], env: NodeJS.ProcessEnv = {}, cwd = work) => {
    const r = spawnSync(process.execPath, [bin, ...args], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), DOCKER_CONFIG: join(work, 'docker'), ...env },
      timeout: 300_000,
    })
    return { code: r.status, stdout: r.stdout, stderr: r.stderr }
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'ism-rb-'))
    ;[reg, basic] = await Promise.all([startTestRegistry(), startTestRegistry({ auth: 'basic' })])
    ;[seeded, pinned] = await Promise.all([
      seedBases(reg, { debian: true }),
      skopeoPush(reg, `oci-archive:${busyboxArchive()}`, 'x/y:1'),
      seedBases(basic),
    ])
    mirror = await startProxy(reg.host)
  })
  afterAll(async () => {
    await Promise.all([mirror?.stop(), reg?.stop(), basic?.stop(), podmanCleanup()])
    await cleanupTmpDirs()
    rmSync(work, { recursive: true, force: true })
  })

  it("from('busybox') through the mirror option: RUN on the pulled base, bases recorded, loads and runs in podman", async () => {
    const out = join(work, 'busybox.tar')
    const result = await image()
      .from('busybox')
      .run('echo "hello from the registry base" > /hello')
      .cmd(['cat', '/hello'])
      .build({ cacheDir: join(work, 'api-cache'), context: work, registry: { mirrors: { 'docker.io': [mirror.host] } }, output: { type: 'oci', dest: out }, tags: ['registry-base:1'] })
    expect(result.bases).toEqual([{ ref: 'docker.io/library/busybox:latest', digest: seeded.busybox }])
    expect(result.layers).toHaveLength(2)
    const run = await podmanLoadAndRun(out)
    expect(run.stdout).toBe('hello from the registry base\n')
  })

  it("from('debian') through the mirror option, and from('busybox') through IMAGESMITH_REGISTRY_MIRRORS with the CLI", async () => {
    const deb = await image().from('debian').build({ cacheDir: join(work, 'api-cache'), context: work, registry: { mirrors: { 'docker.io': [reg.host] } } })
    expect(deb.bases).toEqual([{ ref: 'docker.io/library/debian:latest', digest: seeded.debian }])
    expect(deb.layers.map((l) => l.digest)).toHaveLength(1)

    const script = join(work, 'busybox.ts')
    writeFileSync(script, `import { image } from ${JSON.stringify(api)}\nexport default image().from('busybox').env('FROM_ENV', '1')\n`)
    const r = cli(['build', script, '--context', work, '--progress', 'quiet'], { IMAGESMITH_REGISTRY_MIRRORS: `docker.io=${reg.host}` })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/)
  })

  it('a tag used by two FROMs in one build is resolved once', async () => {
    const before = mirror.requests.filter((r) => r.path === '/v2/library/busybox/manifests/latest').length
    const stage = image().from('busybox').run('echo a > /a')
    const result = await image()
      .from('busybox:latest')
      .copy('/a', '/a', { from: stage })
      .build({ cacheDir: join(work, 'api-cache'), context: work, registry: { mirrors: { 'docker.io': [mirror.host] } } })
    expect(mirror.requests.filter((r) => r.path === '/v2/library/busybox/manifests/latest').length - before).toBe(1)
    expect(result.bases).toEqual([{ ref: 'docker.io/library/busybox:latest', digest: seeded.busybox }])
  })

  it("from('host:port/x/y@sha256:…') honours the pinned digest", async () => {
    const result = await image()
      .from(`${reg.host}/x/y@${pinned}`)
      .run('test -x /bin/sh')
      .build({ cacheDir: join(work, 'api-cache'), context: work })
    expect(result.bases).toEqual([{ ref: `${reg.host}/x/y@${pinned}`, digest: pinned }])
  })

  it('imagesmith pull prints the digest and fills the store; the mirror flag and env var both work; unknown refs fail typed', () => {
    const p = cli(['pull', 'busybox', '--registry-mirror', `docker.io=${reg.host}`])
    expect(p.stderr).toContain('pulled docker.io/library/busybox:latest')
    expect(p.code).toBe(0)
    expect(p.stdout.trim()).toBe(seeded.busybox)
    const env = cli(['pull', 'busybox:latest', '-q'], { IMAGESMITH_REGISTRY_MIRRORS: `docker.io=${reg.host}` })
    expect(env.stdout.trim()).toBe(seeded.busybox)
    const missing = cli(['pull', `${reg.host}/library/nope:1`])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('MANIFEST_UNKNOWN')
  })

  it("the registry-base example builds offline via --registry-mirror, and from('debian') via IMAGESMITH_REGISTRY_MIRRORS, through the CLI", async () => {
    const out = join(work, 'example.tar')
    const r = cli(['build', join(root, 'examples', 'registry-base', 'build.ts'), '--registry-mirror', `docker.io=${reg.host}`, '-t', 'registry-example:1', '-o', `type=oci,dest=${out}`, '--progress', 'plain'], {}, root) // tsconfig's paths map 'imagesmith' to src/
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain('FROM busybox')
    expect((await podmanLoadAndRun(out)).stdout).toMatch(/^built on \S+ from a registry base\n$/)

    const script = join(work, 'debian.ts')
    writeFileSync(script, `import { image } from ${JSON.stringify(api)}\nexport default image().from('debian').run('cat /etc/debian_version > /version').cmd(['cat', '/version'])\n`)
    const deb = join(work, 'debian.tar')
    const d = cli(['build', script, '--context', work, '-o', `type=oci,dest=${deb}`, '--progress', 'quiet'], { IMAGESMITH_REGISTRY_MIRRORS: `docker.io=${reg.host}` })
    expect(d.code, d.stderr).toBe(0)
    expect((await podmanLoadAndRun(deb)).stdout).toMatch(/^12\.\d+\n$/)
  })

  it('credentials used for a base never reach the store, the image config or its history', async () => {
    const cacheDir = join(work, 'cred-cache')
    const result = await image()
      .from(`${basic.host}/library/busybox`)
      .run('true')
      .build({ cacheDir, context: work, registry: { auths: { [basic.host]: basic.auth! } } })
    expect(result.bases[0]!.digest).toBe(seeded.busybox)
    const { password, username } = basic.auth!
    expect(JSON.stringify(result)).not.toContain(password)
    expect(await filesContaining(cacheDir, password)).toEqual([])
    expect(await filesContaining(cacheDir, Buffer.from(`${username}:${password}`).toString('base64'))).toEqual([])
  })
})
