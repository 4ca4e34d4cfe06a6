/**
 * Proves the test bed works with the real tools, on the provisioned busybox base
 * (the archive made by scripts/provision.sh, not our builder's output).
 */
import { afterAll, describe, expect, it } from 'vitest'
import {
  arm64Unavailable,
  BASE_TAG,
  busyboxArchive,
  busyboxArm64Archive,
  busyboxArm64RootfsTar,
  busyboxLayout,
  cleanupTmpDirs,
  debianArchive,
  mountsUnder,
  tmpDir,
} from '../helpers/testbed.js'
import {
  ociImageToolValidate,
  podmanCleanup,
  podmanHistory,
  podmanInspect,
  podmanLoadAndRun,
  podmanStore,
  requireTools,
  skopeoInspect,
  skopeoInspectConfig,
  startDockerd,
  startRegistry,
  ToolError,
  type Dockerd,
  type Registry,
} from '../helpers/tools.js'
import { existsSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

const bed = requireTools(['skopeo', 'oci-image-tool', 'podman', 'runc', 'dockerd', '/usr/bin/docker', 'ctr', 'docker-registry', 'htpasswd'])

describe.skipIf(bed.skip)('test bed', () => {
  const started: { dockerd?: Dockerd; registry?: Registry; dirs: string[] } = { dirs: [] }

  afterAll(async () => {
    const results = await Promise.allSettled([
      started.dockerd?.stop(),
      started.registry?.stop(),
      podmanCleanup(),
      cleanupTmpDirs(),
    ])
    for (const d of started.dirs) {
      expect(existsSync(d), `${d} left behind`).toBe(false)
      expect(mountsUnder(d)).toEqual([])
    }
    const failed = results.filter((r) => r.status === 'rejected')
    expect(failed).toEqual([])
  })

  it('skopeo inspects the busybox archive and layout', async () => {
    const fromArchive = await skopeoInspect(busyboxArchive())
    const fromLayout = await skopeoInspect(busyboxLayout(), BASE_TAG)
    expect(fromArchive.Digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(fromLayout.Digest).toBe(fromArchive.Digest)
    expect(fromArchive.Os).toBe('linux')
    expect(fromArchive.Layers).toHaveLength(1)
    const config = await skopeoInspectConfig(busyboxArchive())
    expect(config).toMatchObject({ config: { Cmd: ['sh'], Env: [PATH_ENV] } })
  })

  it('the debian base is provisioned too', async () => {
    const config = await skopeoInspectConfig(debianArchive())
    expect(config).toMatchObject({ os: 'linux', config: { Cmd: ['bash'], Env: [PATH_ENV] } })
  })

  it.skipIf(arm64Unavailable() !== undefined)('the arm64 busybox base is provisioned and runs through the qemu-aarch64 handler', async () => {
    const config = await skopeoInspectConfig(busyboxArm64Archive())
    expect(config).toMatchObject({ os: 'linux', architecture: 'arm64', config: { Cmd: ['sh'], Env: [PATH_ENV] } })
    const dir = await tmpDir('ism-arm64-')
    execFileSync('tar', ['-xf', busyboxArm64RootfsTar(), '-C', dir, 'bin/busybox'])
    // Executed directly: the kernel hands the aarch64 ELF to qemu through binfmt_misc.
    expect(execFileSync(join(dir, 'bin/busybox'), ['uname', '-m'], { encoding: 'utf8' }).trim()).toBe('aarch64')
  })

  it('oci-image-tool validates the layout and the archive', async () => {
    const dir = await ociImageToolValidate(busyboxLayout(), BASE_TAG)
    expect(dir.stdout + dir.stderr).toMatch(/Validation succeeded/)
    const tar = await ociImageToolValidate(busyboxArchive(), BASE_TAG)
    expect(tar.stdout + tar.stderr).toMatch(/Validation succeeded/)
    // and it does reject a ref that is not there
    await expect(ociImageToolValidate(busyboxLayout(), 'no-such-tag')).rejects.toBeInstanceOf(ToolError)
  })

  it('podman loads busybox.tar and runs it', async () => {
    const store = await podmanStore()
    started.dirs.push(store.dir)
    const hi = await podmanLoadAndRun(busyboxArchive(), { args: ['busybox', 'echo', 'hi'] })
    expect(hi.stdout).toBe('hi\n')
    expect(hi.image.id).toMatch(/^[0-9a-f]{64}$/)

    const id = await store.run(hi.image.id, { user: 'app', args: ['id'] })
    expect(id.stdout.trim()).toBe('uid=1000(app) gid=1000(app) groups=1000(app)')
    const ep = await store.run(hi.image.id, { entrypoint: ['/bin/sh', '-c'], args: ['ls -ld /tmp /home/app'] })
    expect(ep.stdout).toMatch(/^drwxrwxrwt .* \/tmp$/m)
    expect(ep.stdout).toMatch(/^drwxr-xr-x\s+\d+\s+app\s+app .* \/home\/app$/m)

    const history = await podmanHistory(hi.image.id)
    expect(history.length).toBeGreaterThanOrEqual(1)
    const inspect = await podmanInspect(hi.image.id)
    expect(inspect['Id']).toBe(hi.image.id)
  })

  it('dockerd starts; docker version works; ctr imports busybox.tar', async () => {
    const d = await startDockerd()
    started.dockerd = d
    started.dirs.push(d.dir)
    expect(Buffer.byteLength(d.containerdSocket)).toBeLessThan(100)
    const v = await d.docker(['version', '--format', '{{.Client.Version}} {{.Server.Version}}'])
    expect(v.stdout.trim()).toMatch(/^20\.10\.\S+ 20\.10\.\S+$/)

    await d.ctr(['images', 'import', busyboxArchive()])
    const ls = await d.ctr(['images', 'ls', '-q'])
    expect(ls.stdout.trim().split('\n').some((ref) => ref.endsWith(`:${BASE_TAG}`))).toBe(true)
    const ref = ls.stdout.trim().split('\n')[0] ?? ''
    const run = await d.ctr(['run', '--rm', ref, 'ism-testbed', 'busybox', 'echo', 'hi from containerd'])
    expect(run.stdout).toBe('hi from containerd\n')
  })

  it('docker-registry answers GET /v2/ with 200, and with 401 when auth is on', async () => {
    const r = await startRegistry()
    started.registry = r
    started.dirs.push(r.dir)
    expect(r.host).toMatch(/^127\.0\.0\.1:\d+$/)
    expect((await fetch(`${r.url}/v2/`)).status).toBe(200)

    const authed = await startRegistry({ auth: { username: 'u', password: 'p' } })
    try {
      expect((await fetch(`${authed.url}/v2/`)).status).toBe(401)
      const ok = await fetch(`${authed.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` } })
      expect(ok.status).toBe(200)
    } finally {
      await authed.stop()
    }
    expect(existsSync(authed.dir)).toBe(false)
  })
})
