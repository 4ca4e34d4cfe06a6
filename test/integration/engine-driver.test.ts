/**
 * `engine: { type: 'docker' }`: the build handed to a real Docker Engine 20.10 started on a private
 * socket (`--bridge=none`, so RUNs need network 'none'), compared with the same builder built here.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fromDockerfile, image } from '../../src/index.js'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import type { ProgressEvent } from '../../src/solver/types.js'
import { busyboxArchive, busyboxLayout, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { layoutConfig, layoutTree } from '../helpers/image-tree.js'
import { requireTools, runTool, startDockerd, type Dockerd } from '../helpers/tools.js'
import { startTestRegistry } from '../helpers/registry.js'
import { main } from '../../src/cli/main.js'
import { createServer } from 'node:net'
import { chmod, readFile } from 'node:fs/promises'
import { startPodmanService, type PodmanService } from '../helpers/podman-service.js'

const bed = requireTools(['runc', 'dockerd', '/usr/bin/docker', 'umoci', 'openssl', 'docker-registry', 'skopeo'])

describe.skipIf(bed.skip)(`engine driver on dockerd 20.10${bed.skip ? ` (skipped: ${bed.reason})` : ''}`, () => {
  let work: string
  let context: string
  let dockerd: Dockerd
  const engine = () => ({ type: 'docker' as const, host: `unix://${dockerd.socket}` })
  const app = () =>
    image()
      .from(`oci-archive:${busyboxArchive()}`)
      .env('GREETING', 'hello')
      .workdir('/app')
      .copy('.', '/app/')
      .run('echo built > /app/made && rm -f /app/drop.txt')
      .label('org.example.kind', 'test')
      .cmd(['cat', '/app/hello.txt'])

  beforeAll(async () => {
    work = await tmpDir('ism-eng-')
    context = join(work, 'ctx')
    await mkdir(join(context, 'sub'), { recursive: true })
    await writeFile(join(context, 'hello.txt'), 'hello through the engine\n')
    await writeFile(join(context, 'sub', 'data.bin'), Buffer.from([0, 1, 2, 3, 255]))
    await writeFile(join(context, 'drop.txt'), 'removed by the RUN\n')
    await writeFile(join(context, 'secret.key'), 'ignored\n')
    await writeFile(join(context, '.dockerignore'), 'secret.key\n')
    dockerd = await startDockerd()
  }, 120_000)

  afterAll(async () => {
    await dockerd?.stop()
    await cleanupTmpDirs()
  }, 60_000)

  it('builds the same filesystem and config as a local build, loading the local base first, and BuildKit built it', async () => {
    const local = join(work, 'local-layout')
    await app().build({ context, cacheDir: join(work, 'cache'), network: 'none', output: { type: 'oci-layout', dest: local }, tags: ['same:1'] })
    const events: ProgressEvent[] = []
    const archive = join(work, 'engine.tar')
    const r = await app().build({
      context,
      cacheDir: join(work, 'cache'),
      network: 'none',
      engine: engine(),
      tags: ['imagesmith-test/engine:1'],
      output: { type: 'oci', dest: archive },
      onProgress: (e) => events.push(e),
    })
    expect(r.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(r.ref).toBe('imagesmith-test/engine:1')
    // The base was loaded under its content-derived name, and the image keeps its tag in the engine.
    const images = (await dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n')
    expect(images.some((n) => n.startsWith('imagesmith-base:'))).toBe(true)
    expect(images).toContain('imagesmith-test/engine:1')
    const inspect = JSON.parse((await dockerd.docker(['image', 'inspect', 'imagesmith-test/engine:1'])).stdout) as { Id: string }[]
    expect(inspect[0]!.Id).toBe(r.digest)
    const history = (await dockerd.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'imagesmith-test/engine:1'])).stdout
    expect(history).toContain('# buildkit')
    // The engine's steps came through as progress, RUN output included.
    const started = events.filter((e) => e.type === 'start').map((e) => (e as { description: string }).description)
    expect(started.some((d) => d.includes('RUN echo built'))).toBe(true)
    expect(events.some((e) => e.type === 'done')).toBe(true)

    const unpacked = join(work, 'engine-layout')
    await mkdir(unpacked)
    await runTool('tar', ['-xf', archive, '-C', unpacked])
    const [a, b] = [await layoutTree(local, 'same:1'.split(':')[1]!, join(work, 'u-local')), await layoutTree(unpacked, '1', join(work, 'u-engine'))]
    expect(a.get('app/made')).toBeDefined()
    expect(a.has('app/drop.txt')).toBe(false)
    expect(a.has('app/secret.key')).toBe(false)
    expect(b.has('app/Dockerfile')).toBe(false)
    expect([...b.entries()].filter(([k]) => k.startsWith('app'))).toEqual([...a.entries()].filter(([k]) => k.startsWith('app')))
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort())
    const pick = (c: Record<string, unknown>) => {
      const cfg = c.config as Record<string, unknown>
      return { Env: cfg.Env, Cmd: cfg.Cmd, WorkingDir: cfg.WorkingDir, Entrypoint: cfg.Entrypoint ?? null, Labels: cfg.Labels, User: cfg.User ?? '' }
    }
    expect(pick(layoutConfig(unpacked, '1'))).toEqual(pick(layoutConfig(local, '1')))
  }, 180_000)

  it('takes a Dockerfile through too', async () => {
    const dir = join(work, 'df')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'note.txt'), 'from a Dockerfile\n')
    const imported = fromDockerfile(`FROM oci-archive:${busyboxArchive()} AS base\nCOPY note.txt /note.txt\nFROM base\nRUN cat /note.txt > /copied\nCMD ["cat", "/copied"]\n`)
    await imported.target.build({ context: dir, cacheDir: join(work, 'cache'), network: 'none', engine: engine(), tags: ['imagesmith-test/df:1'] })
    const run = await dockerd.docker(['run', '--rm', '--network', 'none', 'imagesmith-test/df:1'])
    expect(run.stdout).toBe('from a Dockerfile\n')
  }, 120_000)

  it('types a failing RUN as RUN_FAILED with the step and its exit code', async () => {
    const e = await image()
      .from(`oci-archive:${busyboxArchive()}`)
      .run('echo about to fail; exit 7')
      .build({ context, cacheDir: join(work, 'cache'), network: 'none', engine: engine() })
      .catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ImagesmithError)
    const err = e as ImagesmithError
    expect(err.code).toBe(ErrorCodes.RUN_FAILED)
    expect(err.details.exitCode).toBe(7)
    expect(String(err.details.step)).toContain('RUN echo about to fail; exit 7')
    expect(String(err.details.outputTail)).toContain('about to fail')
  }, 120_000)

  it('refuses a secret mount by name before anything reaches the engine', async () => {
    // The engine lists images created in the same second in no fixed order: compared as a set.
    const imageIds = async () => (await dockerd.docker(['images', '-q'])).stdout.split('\n').filter(Boolean).sort()
    const before = await imageIds()
    const e = await image()
      .from(`oci-archive:${busyboxArchive()}`)
      .run('cat /run/secrets/token', { mounts: [{ type: 'secret', id: 'token' }] })
      .build({ context, cacheDir: join(work, 'cache'), network: 'none', engine: engine(), secrets: { token: { value: 's3cret' } } })
      .catch((x: unknown) => x)
    const err = e as ImagesmithError
    expect(err.code).toBe(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED)
    expect(err.details.feature).toBe('secret mount (id=token)')
    expect(String(err.details.step)).toContain('cat /run/secrets/token')
    expect(await imageIds()).toEqual(before)
  }, 60_000)

  it('names the host when no engine answers', async () => {
    const gone = join(work, 'no-such.sock')
    expect(existsSync(gone)).toBe(false)
    const e = await app().build({ context, cacheDir: join(work, 'cache'), engine: { type: 'docker', host: `unix://${gone}` } }).catch((x: unknown) => x)
    const err = e as ImagesmithError
    expect(err.code).toBe(ErrorCodes.ENGINE_UNREACHABLE)
    expect(err.details.host).toBe(`unix://${gone}`)
  }, 30_000)

  it('keeps the RUN output of the engine readable as progress logs, passes --add-host, and refuses --ulimit and --shm-size it would ignore', async () => {
    const logs: string[] = []
    await image()
      .from(`oci-archive:${busyboxArchive()}`)
      .run('echo log-line-from-engine; grep engine-host /etc/hosts')
      .build({
        context, cacheDir: join(work, 'cache'), network: 'none', noCache: true, engine: engine(),
        addHosts: ['engine-host:10.1.2.3'],
        onProgress: (e) => e.type === 'log' && logs.push(e.data.toString()),
      })
    expect(logs.join('')).toContain('log-line-from-engine')
    for (const [opt, feature] of [[{ ulimits: ['nofile=512:512'] }, 'ulimits'], [{ shmSize: '32m' }, 'shm-size']] as const) {
      const e = await image().from(`oci-archive:${busyboxArchive()}`).run('true').build({ context, cacheDir: join(work, 'cache'), network: 'none', engine: engine(), ...opt }).catch((x: unknown) => x)
      expect((e as ImagesmithError).details.feature).toBe(feature)
    }
    expect(logs.join('')).toMatch(/10\.1\.2\.3\s+engine-host/)
  }, 120_000)

  it('pushes through the engine with our stored credentials for that registry, and a refused push is typed', async () => {
    const reg = await startTestRegistry({ auth: 'basic' })
    try {
      const tag = `${reg.host}/team/engine:1`
      const built = () => image().from(`oci-archive:${busyboxArchive()}`).copy('hello.txt', '/hello.txt')
      const denied = await built()
        .build({ context, cacheDir: join(work, 'cache'), engine: engine(), tags: [tag], output: { type: 'registry' }, registry: { auths: { [reg.host]: { username: 'tester', password: 'wrong' } } } })
        .catch((x: unknown) => x)
      expect((denied as ImagesmithError).code).toBe(ErrorCodes.ENGINE_FAILED)
      expect((denied as ImagesmithError).details.registry).toBe(reg.host)
      const r = await built().build({ context, cacheDir: join(work, 'cache'), engine: engine(), tags: [tag], output: { type: 'registry' }, registry: { auths: { [reg.host]: reg.auth! } } })
      expect(r.ref).toBe(tag)
      const inspected = JSON.parse(
        (await runTool('skopeo', ['inspect', '--tls-verify=false', '--creds', `${reg.auth!.username}:${reg.auth!.password}`, '--config', `docker://${tag}`])).stdout,
      ) as { rootfs: { diff_ids: string[] } }
      expect(inspected.rootfs.diff_ids.length).toBe(2)
    } finally {
      await reg.stop()
    }
  }, 120_000)

  it('runs from the CLI with -f Dockerfile --engine docker,host=… and shows the engine steps with --progress plain', async () => {
    const dir = join(work, 'cli')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'Dockerfile'), `FROM oci-archive:${busyboxArchive()}\nRUN echo cli-engine-step\n`)
    const err: string[] = []
    const io = { out: (_s: string) => undefined, err: (s: string) => void err.push(s) }
    const code = await main(['build', '-f', join(dir, 'Dockerfile'), '--engine', `docker,host=unix://${dockerd.socket}`, '-t', 'cli-engine:1', '--network', 'none', '--no-cache', '--progress', 'plain', '--cache-dir', join(work, 'cache'), dir], io)
    expect(code).toBe(0)
    expect(err.join('')).toContain('RUN echo cli-engine-step')
    expect(err.join('')).toContain('cli-engine-step\n')
    expect((await dockerd.docker(['image', 'inspect', 'cli-engine:1'])).exitCode).toBe(0)
    // rawjson: one event a line, the engine's steps among them; tty: the steps drawn as ours are.
    const raw: string[] = []
    expect(await main(['build', '-f', join(dir, 'Dockerfile'), '--engine', `docker,host=unix://${dockerd.socket}`, '--network', 'none', '--no-cache', '--progress', 'rawjson', '--cache-dir', join(work, 'cache'), dir], { out: () => undefined, err: (s: string) => void raw.push(s) })).toBe(0)
    const events = raw.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; description?: string })
    expect(events.some((e) => e.type === 'start' && e.description?.includes('RUN echo cli-engine-step'))).toBe(true)
    expect(events.some((e) => e.type === 'log')).toBe(true)
    const tty: string[] = []
    expect(await main(['build', '-f', join(dir, 'Dockerfile'), '--engine', `docker,host=unix://${dockerd.socket}`, '--network', 'none', '--progress', 'tty', '--cache-dir', join(work, 'cache'), dir], { out: () => undefined, err: (s: string) => void tty.push(s), isTTY: true })).toBe(0)
    expect(tty.join('')).toContain('RUN echo cli-engine-step')
  }, 120_000)

  it('loads oci: layouts and local:NAME images (another build\'s result) first, under content-derived names', async () => {
    const dir = join(work, 'bases')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'x.txt'), 'x\n')
    // Built here and named in the local store, then used as the engine build's base.
    await image().from(`oci:${busyboxLayout()}`).copy('x.txt', '/x.txt').build({ context: dir, cacheDir: join(work, 'cache'), tags: ['local-made:1'] })
    await image()
      .from('local:local-made:1')
      .copy('/bin/busybox', '/copied-busybox', { from: `oci:${busyboxLayout()}` })
      .build({ context: dir, cacheDir: join(work, 'cache'), network: 'none', engine: engine(), tags: ['from-local:1'] })
    const run = await dockerd.docker(['run', '--rm', '--network', 'none', 'from-local:1', 'sh', '-c', 'cat /x.txt; cmp /bin/busybox /copied-busybox && echo same'])
    expect(run.stdout).toBe('x\nsame\n')
    const bases = (await dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}', 'imagesmith-base'])).stdout.trim().split('\n')
    expect(bases.every((b) => /^imagesmith-base:[0-9a-f]{32}$/.test(b))).toBe(true)
  }, 120_000)

  it('reaches an engine over tcp with TLS from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH', async () => {
    const certs = join(work, 'tls')
    const client = join(certs, 'client')
    await mkdir(client, { recursive: true })
    const ssl = (args: string[]) => runTool('openssl', args, { cwd: certs })
    await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=imagesmith-test-ca'])
    await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'])
    await writeFile(join(certs, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
    await ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server-cert.pem', '-days', '2', '-extfile', 'server.ext'])
    await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client/key.pem', '-out', 'client.csr', '-subj', '/CN=client'])
    await writeFile(join(certs, 'client.ext'), 'extendedKeyUsage=clientAuth\n')
    await ssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'client/cert.pem', '-days', '2', '-extfile', 'client.ext'])
    await runTool('cp', [join(certs, 'ca.pem'), join(client, 'ca.pem')])
    const port = await freePort()
    const tlsd = await startDockerd({
      extraArgs: ['--host', `tcp://127.0.0.1:${port}`, '--tlsverify', '--tlscacert', join(certs, 'ca.pem'), '--tlscert', join(certs, 'server-cert.pem'), '--tlskey', join(certs, 'server-key.pem')],
    })
    const saved = { v: process.env.DOCKER_TLS_VERIFY, p: process.env.DOCKER_CERT_PATH }
    try {
      const build = () => image().from(`oci-archive:${busyboxArchive()}`).copy('hello.txt', '/hello.txt').build({ context, cacheDir: join(work, 'cache'), engine: { type: 'docker', host: `tcp://127.0.0.1:${port}` }, tags: ['tls-engine:1'] })
      process.env.DOCKER_TLS_VERIFY = '1'
      // Without a client certificate (only the CA there) the engine refuses the connection.
      process.env.DOCKER_CERT_PATH = join(certs, 'no-client')
      await mkdir(join(certs, 'no-client'))
      await runTool('cp', [join(certs, 'ca.pem'), join(certs, 'no-client', 'ca.pem')])
      const refused = await build().catch((x: unknown) => x)
      expect((refused as ImagesmithError).code).toBe(ErrorCodes.ENGINE_UNREACHABLE)
      expect((refused as ImagesmithError).details.host).toBe(`tcp://127.0.0.1:${port}`)
      process.env.DOCKER_CERT_PATH = client
      const r = await build()
      const inspect = JSON.parse((await tlsd.docker(['image', 'inspect', 'tls-engine:1'])).stdout) as { Id: string }[]
      expect(inspect[0]!.Id).toBe(r.digest)
    } finally {
      restore('DOCKER_TLS_VERIFY', saved.v)
      restore('DOCKER_CERT_PATH', saved.p)
      await tlsd.stop()
    }
  }, 180_000)
})

/**
 * The ssh hop without an sshd (none is installed here, and installing one writes /etc): an `ssh` on
 * PATH that records its arguments and runs what the remote side would, the docker CLI's
 * `system dial-stdio`, against the test's engine.
 */
describe.skipIf(bed.skip)('engine driver over ssh://', () => {
  it('dials `ssh -l USER -p PORT -- HOST docker system dial-stdio` and builds through its stdio', async () => {
    const work = await tmpDir('ism-engssh-')
    const dockerd = await startDockerd()
    const saved = process.env.PATH
    try {
      const bin = join(work, 'bin')
      await mkdir(bin)
      const argsFile = join(work, 'ssh-args')
      await writeFile(join(bin, 'ssh'), `#!/bin/sh\nprintf '%s\\n' "$@" >> ${argsFile}\nexec /usr/bin/docker -H unix://${dockerd.socket} system dial-stdio\n`)
      await chmod(join(bin, 'ssh'), 0o755)
      process.env.PATH = `${bin}:${saved ?? ''}`
      const ctx = join(work, 'ctx')
      await mkdir(ctx)
      await writeFile(join(ctx, 'f.txt'), 'over ssh\n')
      const r = await image().from(`oci-archive:${busyboxArchive()}`).copy('f.txt', '/f.txt').build({ context: ctx, cacheDir: join(work, 'cache'), engine: { type: 'docker', host: 'ssh://ci@builder.example:2222' }, tags: ['ssh-engine:1'] })
      const inspect = JSON.parse((await dockerd.docker(['image', 'inspect', 'ssh-engine:1'])).stdout) as { Id: string }[]
      expect(inspect[0]!.Id).toBe(r.digest)
      const calls = (await readFile(argsFile, 'utf8')).split('\n')
      expect(calls.slice(0, 11)).toEqual(['-o', 'BatchMode=yes', '-l', 'ci', '-p', '2222', '--', 'builder.example', 'docker', 'system', 'dial-stdio'])
    } finally {
      process.env.PATH = saved
      await dockerd.stop()
    }
  }, 120_000)
})

const podmanBed = requireTools(['runc', 'podman', 'umoci'])

/** Podman's Docker-compatible service behind the same flag: buildah runs the build and sends `stream` text. */
describe.skipIf(podmanBed.skip)(`engine driver on podman system service${podmanBed.skip ? ` (skipped: ${podmanBed.reason})` : ''}`, () => {
  let service: PodmanService
  let work: string
  beforeAll(async () => {
    work = await tmpDir('ism-engpod-')
    service = await startPodmanService()
  }, 120_000)
  afterAll(async () => {
    await service?.stop()
  }, 60_000)

  it('builds the same filesystem and config as a local build, with the steps from its stream', async () => {
    const ctx = join(work, 'ctx')
    await mkdir(ctx)
    await writeFile(join(ctx, 'hello.txt'), 'hello podman\n')
    const b = () => image().from(`oci-archive:${busyboxArchive()}`).env('A', '1').copy('hello.txt', '/app/hello.txt').run('echo made > /app/made').cmd(['cat', '/app/hello.txt'])
    const local = join(work, 'local')
    await b().build({ context: ctx, cacheDir: join(work, 'cache'), network: 'none', tags: ['p:1'], output: { type: 'oci-layout', dest: local } })
    const events: ProgressEvent[] = []
    const archive = join(work, 'podman.tar')
    const r = await b().build({ context: ctx, cacheDir: join(work, 'cache'), network: 'none', tags: ['podman-engine:1'], engine: { type: 'docker', host: `unix://${service.socket}` }, output: { type: 'oci', dest: archive }, onProgress: (e) => events.push(e) })
    expect(r.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    const started = events.filter((e) => e.type === 'start').map((e) => (e as { description: string }).description)
    expect(started.some((d) => d.startsWith('RUN echo made'))).toBe(true)
    const unpacked = join(work, 'podman-layout')
    await mkdir(unpacked)
    await runTool('tar', ['-xf', archive, '-C', unpacked])
    const a = await layoutTree(local, '1', join(work, 'u-local'))
    const p = await layoutTree(unpacked, '1', join(work, 'u-podman'))
    expect([...p.entries()].filter(([k]) => k.startsWith('app'))).toEqual([...a.entries()].filter(([k]) => k.startsWith('app')))
    const pick = (c: Record<string, unknown>) => {
      const cfg = c.config as Record<string, unknown>
      return { Cmd: cfg.Cmd, Env: (cfg.Env as string[]).filter((e) => e.startsWith('A=')) }
    }
    expect(pick(layoutConfig(unpacked, '1'))).toEqual(pick(layoutConfig(local, '1')))
  }, 180_000)
})

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name]
  else process.env[name] = value
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
