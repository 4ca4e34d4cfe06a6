/**
 * The engine hand-off's pure parts: the BuildKit trace decoded (messages recorded from dockerd
 * 20.10), exit codes read from failure text, the progress of Podman's text stream, engine hosts, the
 * CLI's --engine, the rewritten Dockerfile, and the API version check against a /version answer.
 */
import { createServer } from 'node:http'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import { decodeBuildkitTrace } from '../../src/docker/buildkit-trace.js'
import { parseEngineHost, describeEngine } from '../../src/docker/engine-host.js'
import { EngineProgress, exitCodeOf } from '../../src/drivers/engine-progress.js'
import { engineDockerfile, refuseUnsupported } from '../../src/drivers/engine-dockerfile.js'
import { parseEngine } from '../../src/cli/build.js'
import { resolveBuildOptions } from '../../src/pipeline/resolve-options.js'
import type { ProgressEvent } from '../../src/solver/types.js'
import { thrown } from '../helpers/thrown.js'
import { Readable } from 'node:stream'
import type { IncomingMessage } from 'node:http'
import { engineVersion, jsonMessages, MAX_LINE } from '../../src/docker/engine-api.js'
import { createServer as netServer, type Socket } from 'node:net'

/** A RUN's output log, and the same vertex completed with its error, as dockerd 20.10 sent them. */
const LOG_TRACE = 'GqkDCkdzaGEyNTY6MzI0NGVhOTNiN2FiNTU2NDlhNzk0N2Y1ODFmMWVhYjU5MGYzMzY0MzZlN2JiZDMwOGU1NmZlMDcxYzY5YmE0YxIMCMDz09gGELuB9JMCGAEizQJ0b3RhbCAyMApkcnd4ci14ci14ICAgIDIgcm9vdCAgICAgcm9vdCAgICAgICAgICA0MDk2IERlYyAgNiAwNTo1OSAuCmRyd3hyLXhyLXggICAgMSByb290ICAgICByb290ICAgICAgICAgIDQwOTYgRGVjICA2IDA1OjU5IC4uCi1ydy1yLS1yLS0gICAgMSByb290ICAgICByb290ICAgICAgICAgICAgNTggRGVjICA2IDA1OjU5IC5kb2NrZXJmaWxlLngKLXJ3LXItLXItLSAgICAxIHJvb3QgICAgIHJvb3QgICAgICAgICAgICAxNCBEZWMgIDYgMDU6NTkgLmRvY2tlcmlnbm9yZQotcnctci0tci0tICAgIDEgcm9vdCAgICAgcm9vdCAgICAgICAgICAgICAzIERlYyAgNiAwNTo1OSBhLnR4dAo='
const ERROR_TRACE = 'CpkCCkdzaGEyNTY6MzI0NGVhOTNiN2FiNTU2NDlhNzk0N2Y1ODFmMWVhYjU5MGYzMzY0MzZlN2JiZDMwOGU1NmZlMDcxYzY5YmE0YxJHc2hhMjU2OmRmODhkODE3ZDgwMTU4ZWZmMmEzOTQxZDg5MmI2MjYwYmI1NGMxMDhjOTg1NWU1MzY0MzMwOTM3ZTRjN2Y2ODQaH1szLzNdIFJVTiBscyAtbGEgL2FwcCAmJiBleGl0IDMqDAjA89PYBhCL+d35ATIMCMDz09gGELjOi5YCOkhleGVjdXRvciBmYWlsZWQgcnVubmluZyBbL2Jpbi9zaCAtYyBscyAtbGEgL2FwcCAmJiBleGl0IDNdOiBleGl0IGNvZGU6IDM='
const RUN_DIGEST = 'sha256:3244ea93b7ab55649a7947f581f1eab590f336436e7bbd308e56fe071c69ba4c'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('moby.buildkit.trace', () => {
  it('decodes a log and a failed vertex', () => {
    const log = decodeBuildkitTrace(LOG_TRACE)
    expect(log.vertexes).toEqual([])
    expect(log.logs).toHaveLength(1)
    expect(log.logs[0]!.vertex).toBe(RUN_DIGEST)
    expect(log.logs[0]!.stream).toBe(1)
    expect(log.logs[0]!.data.toString()).toContain('a.txt')
    const failed = decodeBuildkitTrace(ERROR_TRACE).vertexes[0]!
    expect(failed.digest).toBe(RUN_DIGEST)
    expect(failed.name).toBe('[3/3] RUN ls -la /app && exit 3')
    expect(failed.inputs).toEqual(['sha256:df88d817d80158eff2a3941d892b6260bb54c108c9855e5364330937e4c7f684'])
    expect(failed.error).toBe('executor failed running [/bin/sh -c ls -la /app && exit 3]: exit code: 3')
    expect(failed.completed! - failed.started!).toBeGreaterThanOrEqual(0)
  })

  it('becomes progress events, and the failure names the step, its exit code and output', () => {
    const events: ProgressEvent[] = []
    const p = new EngineProgress((e) => events.push(e))
    p.handle({ id: 'moby.buildkit.trace', aux: LOG_TRACE })
    expect(events).toEqual([]) // a log of a vertex not yet seen is not shown against nothing
    p.handle({ id: 'moby.buildkit.trace', aux: ERROR_TRACE })
    p.handle({ id: 'moby.buildkit.trace', aux: LOG_TRACE })
    p.handle({ errorDetail: { message: 'executor failed running [/bin/sh -c ls -la /app && exit 3]: exit code: 3' }, error: 'x' })
    expect(events.map((e) => e.type)).toEqual(['start', 'error', 'log'])
    expect(p.failure).toMatchObject({ step: '[3/3] RUN ls -la /app && exit 3', exitCode: 3 })
    expect(p.failure!.outputTail).toContain('a.txt')
  })

  it('reads Podman (buildah) stream text as steps and aux.ID as the image id', () => {
    const events: ProgressEvent[] = []
    const p = new EngineProgress((e) => events.push(e))
    p.handle({ stream: 'STEP 1/2: FROM busybox\n' })
    p.handle({ stream: 'STEP 2/2: RUN echo hi\n' })
    p.handle({ stream: 'hi\n' })
    p.handle({ stream: 'COMMIT app\n' })
    p.handle({ aux: { ID: 'sha256:' + 'a'.repeat(64) } })
    p.finish()
    expect(events.filter((e) => e.type === 'start').map((e) => (e as { description: string }).description)).toEqual(['FROM busybox', 'RUN echo hi'])
    expect(events.filter((e) => e.type === 'done')).toHaveLength(2)
    expect(Buffer.concat(events.flatMap((e) => (e.type === 'log' ? [e.data] : []))).toString()).toBe('hi\nCOMMIT app\n')
    expect(p.imageId).toBe('sha256:' + 'a'.repeat(64))
    expect(p.buildkit).toBe(false)
  })
})

describe('the engine\'s JSON lines', () => {
  it('joins a character split between chunks, skips non-JSON and over-long lines', async () => {
    const msg = Buffer.from('{"stream":"héllo"}\nnot json\n')
    const cut = msg.indexOf(0xa9) // the second byte of é
    const long = Buffer.from(`{"stream":"${'x'.repeat(MAX_LINE + 10)}"}\n`)
    const chunks = [msg.subarray(0, cut), msg.subarray(cut), long, Buffer.from('{"aux":{"ID":"sha256:1"}}')]
    const out: Record<string, unknown>[] = []
    for await (const m of jsonMessages(Readable.from(chunks) as unknown as IncomingMessage)) out.push(m)
    expect(out).toEqual([{ stream: 'héllo' }, { aux: { ID: 'sha256:1' } }])
  })
})

describe('exitCodeOf', () => {
  it('reads BuildKit and buildah exit codes, the last one winning, and nothing else', () => {
    expect(exitCodeOf('executor failed running [/bin/sh -c exit 3]: exit code: 3')).toBe(3)
    expect(exitCodeOf('process "/bin/sh -c echo exit code: 9; exit 42" did not complete successfully: exit code: 42')).toBe(42)
    expect(exitCodeOf('error building at STEP "RUN false": while running runtime: exit status 1')).toBe(1)
    expect(exitCodeOf('failed to compute cache key: "/x" not found')).toBeUndefined()
    expect(exitCodeOf('exit code: ')).toBeUndefined()
    // Long hostile text stays linear: no regex, a bounded digit scan.
    const long = 'exit code: '.repeat(200_000) + '5'
    const t = Date.now()
    expect(exitCodeOf(long)).toBe(5)
    expect(Date.now() - t).toBeLessThan(1000)
  })
})

describe('engine hosts', () => {
  it('parses unix, tcp (TLS from the resolved environment) and ssh hosts', () => {
    expect(parseEngineHost('unix:///run/d.sock')).toEqual({ kind: 'unix', socketPath: '/run/d.sock' })
    expect(parseEngineHost('tcp://builder:2375')).toEqual({ kind: 'tcp', host: 'builder', port: 2375 })
    const tls = { verify: true, certPath: '/certs' }
    expect(parseEngineHost('tcp://10.0.0.5', tls)).toEqual({ kind: 'tcp', host: '10.0.0.5', port: 2376, tls })
    expect(parseEngineHost('ssh://ci@builder.example:2222')).toEqual({ kind: 'ssh', user: 'ci', host: 'builder.example', port: 2222 })
    expect(describeEngine(parseEngineHost('ssh://ci@builder.example'))).toBe('ssh://ci@builder.example')
    expect(thrown(() => parseEngineHost('ftp://x')).code).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(thrown(() => parseEngineHost('ssh://u:pw@h')).code).toBe(ErrorCodes.INVALID_ARGUMENT)
  })

  it('reads DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as the docker CLI does', () => {
    expect(resolveBuildOptions({}, { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/c' }).engineTls).toEqual({ verify: true, certPath: '/c' })
    expect(resolveBuildOptions({}, { DOCKER_TLS: '1', DOCKER_CERT_PATH: '/c' }).engineTls).toEqual({ verify: false, certPath: '/c' })
    expect(resolveBuildOptions({}, {}).engineTls).toBeUndefined()
  })

  it('parses --engine docker[,host=…][,cache-from=…]', () => {
    expect(parseEngine('docker')).toEqual({ type: 'docker' })
    expect(parseEngine('docker,host=tcp://builder:2376,cache-from=app:cache')).toEqual({ type: 'docker', host: 'tcp://builder:2376', cacheFrom: ['app:cache'] })
    expect(() => parseEngine('kubernetes')).toThrow(/engine type must be docker/)
    expect(() => parseEngine('docker,bogus=1')).toThrow(/unknown or empty key bogus/)
  })
})

describe('the engine Dockerfile', () => {
  it('reads context sources from the context directory of the tar, and local bases by their loaded names', () => {
    const b = image()
      .from('oci-archive:/srv/base.tar')
      .copy('.', '/app/')
      .copy('../../etc/x', '/x')
      .add('https://example.com/a.txt', '/a.txt')
      .run('make', { mounts: [{ type: 'bind', target: '/src' }] })
    const text = engineDockerfile(b.toStage(), new Map([['oci-archive:/srv/base.tar', 'imagesmith-base:abc']]))
    expect(text).toContain('FROM imagesmith-base:abc')
    expect(text).toContain('COPY context /app/')
    expect(text).toContain('COPY context/etc/x /x')
    expect(text).toContain('ADD https://example.com/a.txt /a.txt')
    expect(text).toMatch(/--mount=type=bind,target=\/src,source=context /)
    expect(text).not.toContain('oci-archive:')
  })

  it('refuses a secret mount, an ssh mount and a second context, naming the step and the feature', () => {
    const base = image().from('busybox')
    const secret = thrown(() => refuseUnsupported(base.run('cat /run/secrets/t', { mounts: [{ type: 'secret', id: 't' }] }).toStage()))
    expect(secret.code).toBe(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED)
    expect(secret.details).toMatchObject({ feature: 'secret mount (id=t)' })
    expect(String(secret.details.step)).toContain('cat /run/secrets/t')
    const ssh = thrown(() => refuseUnsupported(base.run('git clone x', { mounts: [{ type: 'ssh' }] }).toStage()))
    expect(ssh.details.feature).toBe('ssh mount (id=default)')
  })
})

describe('what a sessionless /build cannot take', () => {
  it('refuses a named context and --no-cache-filter before any connection is made', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ism-eng-'))
    dirs.push(dir)
    // No engine listens there: a refusal that came after connecting would be ENGINE_UNREACHABLE.
    const engine = { type: 'docker' as const, host: `unix://${join(dir, 'none.sock')}` }
    const ctx = join(dir, 'ctx')
    mkdirSync(ctx)
    const named = await image().from('busybox').build({ context: ctx, cacheDir: join(dir, 'c'), engine, buildContexts: { src: ctx } }).catch((x: unknown) => x)
    expect((named as ImagesmithError).code).toBe(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED)
    expect((named as ImagesmithError).details.feature).toBe('named context')
    const filter = await image().from('busybox').build({ context: ctx, cacheDir: join(dir, 'c'), engine, noCacheFilter: ['x'] }).catch((x: unknown) => x)
    expect((filter as ImagesmithError).details.feature).toBe('no-cache-filter')
    const elsewhere = await image().from('busybox').build({ context: ctx, cacheDir: join(dir, 'c'), engine, output: { type: 'docker', host: 'unix:///elsewhere.sock' } }).catch((x: unknown) => x)
    expect((elsewhere as ImagesmithError).code).toBe(ErrorCodes.OUTPUT_INVALID)
    const secret = await image().from('busybox').run('cat /run/secrets/t', { mounts: [{ type: 'secret', id: 't' }] }).build({ context: ctx, cacheDir: join(dir, 'c'), engine, secrets: { t: { value: 'x' } } }).catch((x: unknown) => x)
    expect((secret as ImagesmithError).code).toBe(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED)
    const cached = await image().from('busybox').build({ context: ctx, cacheDir: join(dir, 'c'), engine, cacheTo: [{ type: 'local', dest: join(dir, 'cache') }] }).catch((x: unknown) => x)
    expect((cached as ImagesmithError).code).toBe(ErrorCodes.ENGINE_FEATURE_UNSUPPORTED)
    expect((cached as ImagesmithError).details.feature).toBe('cache-to')
    const attested = await image().from('busybox').build({ context: ctx, cacheDir: join(dir, 'c'), engine, attest: { sbom: true } }).catch((x: unknown) => x)
    expect((attested as ImagesmithError).details.feature).toBe('attestations')
    const budgeted = await image().from('busybox').build({ context: ctx, cacheDir: join(dir, 'c'), engine, budget: { layers: 3 } }).catch((x: unknown) => x)
    expect((budgeted as ImagesmithError).details.feature).toBe('budget')
  })
})

describe('the engine API version', () => {
  it('gives up on a host that takes the connection and never answers, as ENGINE_UNREACHABLE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ism-eng-'))
    dirs.push(dir)
    const socket = join(dir, 'silent.sock')
    const held: Socket[] = []
    const server = netServer((c) => void held.push(c))
    await new Promise<void>((r) => server.listen(socket, r))
    try {
      const e = await engineVersion({ kind: 'unix', socketPath: socket }, undefined, 300).catch((x: unknown) => x)
      expect((e as ImagesmithError).code).toBe(ErrorCodes.ENGINE_UNREACHABLE)
      expect((e as ImagesmithError).details.host).toBe(`unix://${socket}`)
    } finally {
      for (const c of held) c.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })

  it('refuses an engine older than API 1.39, naming the version needed, before the build is sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ism-eng-'))
    dirs.push(dir)
    const socket = join(dir, 'api.sock')
    const paths: string[] = []
    const server = createServer((req, res) => {
      paths.push(`${req.method} ${req.url}`)
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify({ ApiVersion: '1.38', Version: '18.06.3-ce' }))
    })
    await new Promise<void>((r) => server.listen(socket, r))
    try {
      const ctx = join(dir, 'ctx')
      mkdirSync(ctx)
      const e = await image().from('busybox').run('true').build({ context: ctx, cacheDir: join(dir, 'cache'), engine: { type: 'docker', host: `unix://${socket}` } }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(ImagesmithError)
      expect((e as ImagesmithError).code).toBe(ErrorCodes.ENGINE_API_TOO_OLD)
      expect((e as ImagesmithError).details).toMatchObject({ apiVersion: '1.38', needed: '1.39' })
      expect(paths).toEqual(['GET /version'])
    } finally {
      await new Promise<void>((r) => server.close(() => r()))
    }
  })
})
