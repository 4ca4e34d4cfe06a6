/**
 * The foundation end to end: a build FROM the offline busybox base with COPY, ENV, WORKDIR, USER,
 * ENTRYPOINT/CMD, written as one OCI archive that skopeo, oci-image-tool, podman, docker 20.10 and
 * containerd's ctr all accept, and that runs and prints what it should.
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image, type LocalBuildResult } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import {
  ociImageToolValidate,
  podmanCleanup,
  podmanHistory,
  podmanLoadAndRun,
  requireTools,
  runTool,
  skopeoInspect,
  skopeoInspectConfig,
  startDockerd,
  type Dockerd,
} from '../helpers/tools.js'

const bed = requireTools(['skopeo', 'oci-image-tool', 'podman', 'runc', 'dockerd', '/usr/bin/docker', 'ctr'])

describe.skipIf(bed.skip)('foundation: COPY/ENV/WORKDIR/USER image loads everywhere', () => {
  let work: string
  let context: string
  let archive: string
  let result: LocalBuildResult
  let dockerd: Dockerd | undefined

  const app = () =>
    image()
      .from(`oci-archive:${busyboxArchive()}`)
      .env('GREETING', 'hello')
      .workdir('/srv/app')
      .copy('message.txt', '.')
      .copy(['bin/'], '/usr/local/bin/', { chmod: '755' })
      .user('app')
      .label('org.example.test', 'foundation')
      .expose(['8080', '53/udp'])
      .entrypoint(['/usr/local/bin/show'])
      .cmd(['from-cmd'])

  beforeAll(async () => {
    work = await tmpDir('ism-found-')
    context = join(work, 'ctx')
    await mkdir(join(context, 'bin'), { recursive: true })
    await writeFile(join(context, 'message.txt'), 'the copied file\n')
    await writeFile(join(context, 'bin', 'show'), '#!/bin/sh\necho "$GREETING|$(cat message.txt)|$(id -u)|$(pwd)|$1"\n', { mode: 0o644 })
    archive = join(work, 'app.tar')
    result = await app().build({ context, cacheDir: join(work, 'cache1'), output: { type: 'oci', dest: archive }, tags: ['imagesmith-test/foundation:1'] })
  })

  afterAll(async () => {
    await Promise.allSettled([dockerd?.stop(), podmanCleanup()])
    await cleanupTmpDirs()
  })

  it('builds a manifest with the base layer, the WORKDIR directory and one layer per COPY', () => {
    expect(result.digest).toMatch(/^sha256:[a-f0-9]{64}$/)
    // WORKDIR makes /srv/app in a layer of its own, as BuildKit does when the directory is missing.
    expect(result.layers).toHaveLength(4)
    expect(result.config.config.User).toBe('app')
    expect(result.config.config.WorkingDir).toBe('/srv/app')
    expect(result.config.config.Env).toContain('GREETING=hello')
    expect(result.config.config.Entrypoint).toEqual(['/usr/local/bin/show'])
    expect(result.config.config.Cmd).toEqual(['from-cmd'])
    expect(Object.keys(result.config.config.ExposedPorts ?? {}).sort()).toEqual(['53/udp', '8080/tcp'])
    const hist = result.config.history ?? []
    expect(hist.filter((h) => !h.empty_layer)).toHaveLength(4)
    expect(hist.find((h) => h.created_by === 'WORKDIR /srv/app')?.empty_layer).toBeUndefined()
    expect(hist.map((h) => h.created_by)).toContain('WORKDIR /srv/app')
    expect(hist.map((h) => h.created_by)).toContain('ENTRYPOINT ["/usr/local/bin/show"]')
  })

  it('skopeo inspects it and oci-image-tool validates it', async () => {
    const info = await skopeoInspect(archive)
    expect(info.Digest).toBe(result.digest)
    expect(info.Layers).toEqual(result.layers.map((l) => l.digest))
    const config = await skopeoInspectConfig(archive)
    expect(config).toMatchObject({ config: { User: 'app', WorkingDir: '/srv/app' } })
    const v = await ociImageToolValidate(archive, '1')
    expect(v.stdout + v.stderr).toMatch(/validation succeeded|: OK|succeeded/i)
  })

  it('podman loads and runs it with the configured env, user and workdir', async () => {
    const r = await podmanLoadAndRun(archive)
    expect(r.stdout.trim()).toBe('hello|the copied file|1000|/srv/app|from-cmd')
    expect(r.image.names.join(' ')).toContain('imagesmith-test/foundation:1')
    const history = await podmanHistory(r.image.id)
    expect(history.map((h) => h.CreatedBy).join('\n')).toContain('COPY message.txt . # buildkit')
  })

  it('docker 20.10 loads and runs it, and containerd imports it', async () => {
    dockerd = await startDockerd()
    const load = await dockerd.docker(['load', '-i', archive])
    expect(load.stdout).toContain('imagesmith-test/foundation:1')
    const run = await dockerd.docker(['run', '--rm', '--network', 'none', 'imagesmith-test/foundation:1', 'from-docker'])
    expect(run.stdout.trim()).toBe('hello|the copied file|1000|/srv/app|from-docker')
    const hist = await dockerd.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'imagesmith-test/foundation:1'])
    expect(hist.stdout).toContain('USER app')
    await dockerd.ctr(['images', 'import', archive])
    const list = await dockerd.ctr(['images', 'ls', '-q'])
    expect(list.stdout).toContain('docker.io/imagesmith-test/foundation:1')
  })

  it('builds the same digest and the same archive bytes with a separate cache', async () => {
    const archive2 = join(work, 'app2.tar')
    const again = await app().build({ context, cacheDir: join(work, 'cache2'), output: { type: 'oci', dest: archive2 }, tags: ['imagesmith-test/foundation:1'] })
    expect(again.digest).toBe(result.digest)
    expect(again.cacheHits).toBe(0)
    const h = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex')
    expect(h(archive2)).toBe(h(archive))
    // And with the first cache: every COPY layer is a hit, same digest.
    const cached = await app().build({ context, cacheDir: join(work, 'cache1') })
    expect(cached.digest).toBe(result.digest)
    expect(cached.cacheHits).toBe(3)
  })

  it('leaves no partial output next to the archive', async () => {
    expect(readdirSync(work).filter((n) => n.endsWith('.partial') || n.includes('.tmp-'))).toEqual([])
    expect(existsSync(archive)).toBe(true)
    const listing = await runTool('tar', ['-tf', archive])
    expect(listing.stdout.split('\n')).toEqual(expect.arrayContaining(['oci-layout', 'index.json', 'manifest.json', 'repositories']))
  })
})

describe.skipIf(bed.skip)('WORKDIR makes its directory like BuildKit', () => {
  afterAll(() => cleanupTmpDirs())

  it('owned by the current USER when missing; metadata only when it exists', async () => {
    const work = await tmpDir('ism-wd-')
    const archive = join(work, 'wd.tar')
    const b = image()
      .from(`oci-archive:${busyboxArchive()}`)
      .user('app')
      .workdir('/home/app/work/deep')
      .workdir('/tmp')
      .user('root')
      .cmd(['sh', '-c', 'stat -c "%U %a" /home/app/work /home/app/work/deep /home/app; pwd'])
    const r = await b.build({ context: work, cacheDir: join(work, 'cache'), output: { type: 'oci', dest: archive } })
    const hist = (r.config.history ?? []).filter((h) => h.created_by?.startsWith('WORKDIR'))
    expect(hist.map((h) => [h.created_by, h.empty_layer ?? false])).toEqual([
      ['WORKDIR /home/app/work/deep', false],
      ['WORKDIR /tmp', true],
    ])
    expect(r.layers).toHaveLength(2)
    const run = await podmanLoadAndRun(archive)
    expect(run.stdout.trim().split('\n')).toEqual(['app 755', 'app 755', 'app 755', '/tmp'])
  })
})
