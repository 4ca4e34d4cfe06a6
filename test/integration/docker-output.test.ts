/**
 * `output: { type: 'docker' }` (buildx's --load): the image streams into a real Docker Engine 20.10
 * started on a private socket, and into Podman's Docker-compatible API, with its tags.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { main } from '../../src/cli/main.js'
import { resolveBuildOptions } from '../../src/pipeline/resolve-options.js'
import { dockerExporter } from '../../src/exporters/docker.js'
import { finalizeImage } from '../../src/artifacts/finalize.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, startDockerd, type Dockerd } from '../helpers/tools.js'
import { startPodmanService, type PodmanService } from '../helpers/podman-service.js'

const bed = requireTools(['runc', 'dockerd', '/usr/bin/docker', 'podman'])

describe.skipIf(bed.skip)('docker output', () => {
  let work: string
  let context: string
  let dockerd: Dockerd
  const app = () =>
    image()
      .from(`oci-archive:${busyboxArchive()}`)
      .copy('hello.txt', '/hello.txt')
      .cmd(['cat', '/hello.txt'])

  beforeAll(async () => {
    work = await tmpDir('ism-dock-')
    context = join(work, 'ctx')
    await mkdir(context, { recursive: true })
    await writeFile(join(context, 'hello.txt'), 'hello from the docker output\n')
    dockerd = await startDockerd()
  }, 120_000)

  afterAll(async () => {
    await dockerd?.stop()
    await cleanupTmpDirs()
  }, 60_000)

  it('loads into dockerd with every tag, and the image runs', async () => {
    const r = await app().build({
      context,
      cacheDir: join(work, 'cache'),
      tags: ['imagesmith-test/docker-out:1', 'localhost:5000/team/docker-out:2'],
      output: { type: 'docker', host: `unix://${dockerd.socket}` },
    })
    expect(r.ref).toBe('imagesmith-test/docker-out:1')
    const inspect = JSON.parse((await dockerd.docker(['image', 'inspect', 'imagesmith-test/docker-out:1'])).stdout) as { Id: string; RepoTags: string[] }[]
    expect(inspect[0]!.Id).toBe(r.configDigest)
    expect(inspect[0]!.RepoTags.sort()).toEqual(['imagesmith-test/docker-out:1', 'localhost:5000/team/docker-out:2'])
    const run = await dockerd.docker(['run', '--rm', '--network', 'none', 'localhost:5000/team/docker-out:2'])
    expect(run.stdout).toBe('hello from the docker output\n')
  }, 120_000)

  it('takes DOCKER_HOST through the resolved options, and the CLI -o type=docker / --load', async () => {
    expect(resolveBuildOptions({}, { DOCKER_HOST: `unix://${dockerd.socket}` }).dockerHost).toBe(`unix://${dockerd.socket}`)
    expect(resolveBuildOptions({}, {}).dockerHost).toBe('unix:///var/run/docker.sock')
    const script = join(work, 'build.ts')
    await writeFile(
      script,
      `import { image } from ${JSON.stringify(join(process.cwd(), 'src/index.ts'))}\n` +
        `export default image().from(${JSON.stringify(`oci-archive:${busyboxArchive()}`)}).copy('hello.txt', '/h').cmd(['cat', '/h'])\n`,
    )
    const out: string[] = []
    const err: string[] = []
    const io = { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }
    const code = await main(['build', script, '--context', context, '--cache-dir', join(work, 'cache'), '-t', 'cli-load:1', '-o', `type=docker,host=unix://${dockerd.socket}`], io)
    expect(err.join('')).toContain('loaded into')
    expect(code).toBe(0)
    const run = await dockerd.docker(['run', '--rm', '--network', 'none', 'cli-load:1'])
    expect(run.stdout).toBe('hello from the docker output\n')
    // --load names no host: DOCKER_HOST says where the engine is.
    const saved = process.env['DOCKER_HOST']
    process.env['DOCKER_HOST'] = `unix://${dockerd.socket}`
    try {
      const code2 = await main(['build', script, '--context', context, '--cache-dir', join(work, 'cache'), '-t', 'cli-load:2', '--load'], io)
      expect(code2).toBe(0)
    } finally {
      if (saved === undefined) delete process.env['DOCKER_HOST']
      else process.env['DOCKER_HOST'] = saved
    }
    const tags = JSON.parse((await dockerd.docker(['image', 'inspect', 'cli-load:2'])).stdout) as { RepoTags: string[] }[]
    expect(tags[0]!.RepoTags).toContain('cli-load:2')
  }, 120_000)

  it('a missing engine is DOCKER_UNREACHABLE naming the socket', async () => {
    const host = `unix://${join(work, 'no-such.sock')}`
    await expect(app().build({ context, cacheDir: join(work, 'cache'), tags: ['x:1'], output: { type: 'docker', host } })).rejects.toMatchObject({
      code: 'DOCKER_UNREACHABLE',
      details: { host },
    })
  }, 60_000)

  it('an image with attestations: the docker output loads the image; docker 20.10 `docker load` and `ctr images import` take its oci archive', async () => {
    const attest = { sbom: true, provenance: 'max' } as const
    const r = await app().build({ context, cacheDir: join(work, 'cache'), attest, tags: ['attested/out:1'], output: { type: 'docker', host: `unix://${dockerd.socket}` } })
    expect(r.index?.manifests).toHaveLength(2)
    expect((await dockerd.docker(['run', '--rm', '--network', 'none', 'attested/out:1'])).stdout).toBe('hello from the docker output\n')
    const archive = join(work, 'attested.tar')
    await app().build({ context, cacheDir: join(work, 'cache'), attest, tags: ['attested/archive:1'], output: { type: 'oci', dest: archive } })
    // docker 20.10 reads manifest.json alone, which names only the runnable image.
    const loaded = await dockerd.docker(['load', '-i', archive])
    expect(loaded.stdout).toContain('Loaded image: attested/archive:1')
    expect((await dockerd.docker(['run', '--rm', '--network', 'none', 'attested/archive:1'])).stdout).toBe('hello from the docker output\n')
    // containerd takes the index with its attestation manifest (platform unknown/unknown is never unpacked).
    await dockerd.ctr(['images', 'import', archive])
    expect((await dockerd.ctr(['images', 'ls', '-q'])).stdout).toContain('attested/archive:1')
  }, 120_000)

  it("the engine's own refusal is DOCKER_LOAD_FAILED with its message (a config whose diff_ids do not match the layer)", async () => {
    const built = await app().build({ context, cacheDir: join(work, 'cache') })
    const blobs = new BlobStore(join(work, 'cache'))
    const bad = await finalizeImage(blobs, { ...built.config, rootfs: { type: 'layers', diff_ids: built.config.rootfs.diff_ids.map(() => `sha256:${'0'.repeat(64)}` as const) } }, built.layers)
    const err = await dockerExporter.export(bad, { host: `unix://${dockerd.socket}` }, { blobs, tags: ['imagesmith-test/bad:1'], epoch: 0 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'DOCKER_LOAD_FAILED', details: { host: `unix://${dockerd.socket}` } })
    expect((err as Error).message).toMatch(/refused the image: .+/)
    const listed = await dockerd.docker(['image', 'ls', '-q', 'imagesmith-test/bad'])
    expect(listed.stdout.trim()).toBe('')
  }, 120_000)

  it('tcp:// hosts are spoken to over plain HTTP; a server that is no engine is DOCKER_LOAD_FAILED', async () => {
    const server = createServer((req, res) => {
      req.resume()
      req.on('end', () => res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n'))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as AddressInfo).port
    try {
      await expect(app().build({ context, cacheDir: join(work, 'cache'), tags: ['x:1'], output: { type: 'docker', host: `tcp://127.0.0.1:${port}` } })).rejects.toMatchObject({
        code: 'DOCKER_LOAD_FAILED',
        message: expect.stringContaining('HTTP 404: 404 page not found'),
      })
    } finally {
      server.close()
    }
    await expect(app().build({ context, cacheDir: join(work, 'cache'), tags: ['x:1'], output: { type: 'docker', host: 'ssh://me@host' } })).rejects.toMatchObject({ code: 'OUTPUT_INVALID' })
  }, 60_000)

  describe('podman system service (Docker-compatible socket)', () => {
    let podman: PodmanService | undefined
    afterAll(async () => {
      await podman?.stop()
    }, 60_000)

    it('loads the image with its tag, and podman runs it', async () => {
      podman = await startPodmanService()
      const r = await app().build({ context, cacheDir: join(work, 'cache'), tags: ['imagesmith-test/podman-out:1'], output: { type: 'docker', host: `unix://${podman.socket}` } })
      const names = (await podman.store.podman(['image', 'inspect', '--format', '{{.Id}} {{join .RepoTags ","}}', 'imagesmith-test/podman-out:1'])).stdout.trim()
      expect(names).toBe(`${r.configDigest.slice(7)} docker.io/imagesmith-test/podman-out:1`)
      const run = await podman.store.run('imagesmith-test/podman-out:1')
      expect(run.stdout).toBe('hello from the docker output\n')
    }, 120_000)
  })
})
