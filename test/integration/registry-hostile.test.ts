/**
 * A pull against servers that are not registries but answer like one on purpose badly: indexes that
 * fan out exponentially, bytes that trickle in one at a time, Retry-After of an hour, configs of
 * hundreds of megabytes. Each must end within a bounded time as a typed error, and an abort (the
 * API's AbortSignal, Ctrl-C to the CLI) must end it at once. The servers are small loopback HTTP
 * servers written here (test/helpers/hostile.ts); ordinary registry behaviour is tested against a
 * real docker-registry in registry-pull.test.ts.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdirSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ErrorCodes, isImagesmithError, type ImagesmithError } from '../../src/errors.js'
import { resolveRegistryOptions } from '../../src/pipeline/resolve-options.js'
import { parseReference } from '../../src/reference/reference.js'
import { RegistryClient } from '../../src/registry/client.js'
import type { RegistryConfig } from '../../src/registry/options.js'
import { PullSession } from '../../src/registry/pull.js'
import { Store } from '../../src/store/store.js'
import { startHostile, type HostileServer } from '../helpers/hostile.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

const amd64 = { os: 'linux', architecture: 'amd64' }
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`
const repo = resolve(__dirname, '../..')

const servers: HostileServer[] = []
const sessions: PullSession[] = []
afterAll(async () => {
  for (const s of sessions) s.client.close()
  await Promise.all(servers.map((s) => s.stop()))
  await cleanupTmpDirs()
})

async function hostile(handle: Parameters<typeof startHostile>[0]): Promise<HostileServer> {
  const s = await startHostile(handle)
  servers.push(s)
  return s
}

function session(config: Partial<RegistryConfig> = {}): PullSession {
  const s = new PullSession(new RegistryClient({ ...resolveRegistryOptions({}, {}), backoffMs: 20, ...config }))
  sessions.push(s)
  return s
}

async function freshStore(): Promise<Store> {
  const s = new Store(await tmpDir('ism-rh-'))
  await s.init()
  return s
}

/**
 * What `run` ended with, and after how long. A run still going after `boundMs` is aborted, so a
 * regression shows as a failed expectation (ABORTED, too slow) instead of a hung suite.
 */
async function ended(run: (signal: AbortSignal) => Promise<unknown>, boundMs: number): Promise<{ error: ImagesmithError; ms: number }> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(new Error(`still running after ${boundMs} ms`)), boundMs)
  const started = Date.now()
  try {
    const e = await run(ac.signal).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(isImagesmithError(e), String(e)).toBe(true)
    return { error: e as ImagesmithError, ms: Date.now() - started }
  } finally {
    clearTimeout(timer)
  }
}

/** Answers as a registry would for the documents in `docs` (by digest, and `latest` for `top`); anything else 404. */
function registryOf(docs: Map<string, { bytes: Buffer; mediaType: string }>, top: string) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '/'
    if (url === '/v2/') return void res.writeHead(200).end('{}'), true
    const m = /^\/v2\/.+\/(manifests|blobs)\/([^/?]+)$/.exec(url)
    const doc = m ? docs.get(m[2] === 'latest' ? top : m[2]!) : undefined
    if (!doc) return false
    res.writeHead(200, { 'content-type': doc.mediaType, 'content-length': String(doc.bytes.length), 'docker-content-digest': sha(doc.bytes) })
    res.end(req.method === 'HEAD' ? undefined : doc.bytes)
    return true
  }
}

function put(docs: Map<string, { bytes: Buffer; mediaType: string }>, mediaType: string, body: unknown): { mediaType: string; digest: string; size: number } {
  const bytes = Buffer.from(JSON.stringify(body))
  docs.set(sha(bytes), { bytes, mediaType })
  return { mediaType, digest: sha(bytes), size: bytes.length }
}

describe('hostile indexes', () => {
  it('8 nested indexes of 12 identical entries each: each index is read once, PLATFORM_NOT_FOUND in well under a second of work', async () => {
    const docs = new Map<string, { bytes: Buffer; mediaType: string }>()
    const leaf = { mediaType: OCI_MANIFEST, digest: `sha256:${'1'.repeat(64)}`, size: 100, platform: { os: 'linux', architecture: 's390x' } }
    let next = put(docs, OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: Array(12).fill(leaf) })
    for (let level = 1; level < 8; level++) next = put(docs, OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: Array(12).fill(next) })
    const serve = registryOf(docs, next.digest)
    const srv = await hostile((req, res) => void (serve(req, res) || res.writeHead(404).end()))
    const store = await freshStore()
    // The old walk took 12^7 reads of the innermost index (hours of one core) over 8 HTTP requests.
    const { error, ms } = await ended(async (signal) => session().pull(parseReference(`${srv.host}/evil/fanout`), amd64, store.blobs, signal), 20_000)
    expect(error.code).toBe(ErrorCodes.PLATFORM_NOT_FOUND)
    expect(error.details.available).toEqual(['linux/s390x'])
    expect(ms).toBeLessThan(10_000)
    expect(srv.requests.filter((r) => r.path.includes('/manifests/'))).toHaveLength(8)
  })

  it('an index listing more descriptors than any image has is BASE_IMAGE_INVALID naming the limit, before anything it lists is fetched', async () => {
    const docs = new Map<string, { bytes: Buffer; mediaType: string }>()
    const inner = put(docs, OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] })
    const wide = Array.from({ length: 2000 }, (_, i) => ({ ...inner, annotations: { n: String(i) } }))
    const top = put(docs, OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: wide })
    const serve = registryOf(docs, top.digest)
    const srv = await hostile((req, res) => void (serve(req, res) || res.writeHead(404).end()))
    const { error, ms } = await ended(async (signal) => session().pull(parseReference(`${srv.host}/evil/wide`), amd64, (await freshStore()).blobs, signal), 20_000)
    expect(error.code).toBe(ErrorCodes.BASE_IMAGE_INVALID)
    expect(error.details.limit).toBe(1024)
    expect(ms).toBeLessThan(10_000)
    expect(srv.requests.filter((r) => r.path.includes(inner.digest))).toEqual([])
  })

  it('an abort while nested indexes are walked is ABORTED at once', async () => {
    const docs = new Map<string, { bytes: Buffer; mediaType: string }>()
    let next = put(docs, OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] })
    for (let level = 1; level < 8; level++) next = put(docs, OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: Array(12).fill(next) })
    const serve = registryOf(docs, next.digest)
    // Each document takes 300 ms: the walk is still going when the abort comes.
    const srv = await hostile((req, res) => void setTimeout(() => serve(req, res) || res.writeHead(404).end(), 300))
    const ac = new AbortController()
    const pulling = session().pull(parseReference(`${srv.host}/evil/slow-index`), amd64, (await freshStore()).blobs, ac.signal)
    while (srv.requests.filter((r) => r.path.includes('/manifests/')).length < 3) await new Promise((r) => setTimeout(r, 10))
    const aborted = Date.now()
    ac.abort(new Error('test abort'))
    const e = await pulling.then(
      () => undefined,
      (err: unknown) => err as ImagesmithError,
    )
    expect(e?.code).toBe(ErrorCodes.ABORTED)
    expect(Date.now() - aborted).toBeLessThan(1_000)
  })
})

/** Sends a status line now and then one byte of a header every `ms`, never ending the headers. */
function trickleHeaders(req: IncomingMessage, srv: HostileServer, ms: number): void {
  req.socket.write('HTTP/1.1 200 OK\r\nX-Slow: ')
  srv.every(req, ms, () => req.socket.write('a'))
}

/** Sends headers for `size` bytes at once and then one byte of body every `ms`. */
function trickleBody(req: IncomingMessage, res: ServerResponse, srv: HostileServer, size: number, ms: number, mediaType = OCI_MANIFEST): void {
  res.writeHead(200, { 'content-type': mediaType, 'content-length': String(size) })
  res.flushHeaders()
  srv.every(req, ms, () => res.write('{'))
}

describe('slow and stalling servers', () => {
  it('a manifest whose headers arrive one byte at a time (the idle timeout never fires) is REGISTRY_TIMEOUT after the request deadline', async () => {
    const srv = await hostile((req, _res, s) => (req.url === '/v2/' ? void _res.writeHead(200).end('{}') : trickleHeaders(req, s, 200)))
    const { error, ms } = await ended(async (signal) => session({ deadlineMs: 1_500 }).pull(parseReference(`${srv.host}/evil/slow-headers`), amd64, (await freshStore()).blobs, signal), 15_000)
    expect(error.code).toBe(ErrorCodes.REGISTRY_TIMEOUT)
    expect(error.details).toMatchObject({ registry: srv.host, deadlineMs: 1_500 })
    expect(String(error.details.url)).toContain('/manifests/latest')
    expect(ms).toBeGreaterThanOrEqual(1_400)
    expect(ms).toBeLessThan(6_000)
  })

  it('a manifest body and a blob body sent one byte at a time are REGISTRY_TIMEOUT: the deadline covers the body (blobs: plus their size at the slowest rate waited for)', async () => {
    const srv = await hostile((req, res, s) => (req.url === '/v2/' ? void res.writeHead(200).end('{}') : trickleBody(req, res, s, 1000, 200)))
    const body = await ended(async (signal) => session({ deadlineMs: 1_500 }).pull(parseReference(`${srv.host}/evil/slow-body`), amd64, (await freshStore()).blobs, signal), 15_000)
    expect(body.error.code).toBe(ErrorCodes.REGISTRY_TIMEOUT)
    expect(body.ms).toBeLessThan(6_000)

    // A good manifest whose config blob trickles: 1.5 s plus 1000 bytes at 1000 B/s = 2.5 s.
    const docs = new Map<string, { bytes: Buffer; mediaType: string }>()
    const config = { mediaType: OCI_CONFIG, digest: `sha256:${'2'.repeat(64)}`, size: 1000 }
    const manifest = put(docs, OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] })
    const serve = registryOf(docs, manifest.digest)
    const blobSrv = await hostile((req, res, s) => void (serve(req, res) || trickleBody(req, res, s, 1000, 200, OCI_CONFIG)))
    const blob = await ended(async (signal) => session({ deadlineMs: 1_500, minBytesPerSecond: 1_000 }).pull(parseReference(`${blobSrv.host}/evil/slow-blob`), amd64, (await freshStore()).blobs, signal), 15_000)
    expect(blob.error.code).toBe(ErrorCodes.REGISTRY_TIMEOUT)
    expect(blob.error.details.deadlineMs).toBe(2_500)
    expect(String(blob.error.details.url)).toContain(`/blobs/${config.digest}`)
    expect(blob.ms).toBeLessThan(8_000)
  })

  it('an abort (AbortSignal) while bytes trickle in is ABORTED at once, and leaves no temp file', async () => {
    const docs = new Map<string, { bytes: Buffer; mediaType: string }>()
    const config = { mediaType: OCI_CONFIG, digest: `sha256:${'3'.repeat(64)}`, size: 100_000 }
    const manifest = put(docs, OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] })
    const serve = registryOf(docs, manifest.digest)
    const srv = await hostile((req, res, s) => void (serve(req, res) || trickleBody(req, res, s, 100_000, 200, OCI_CONFIG)))
    const store = await freshStore()
    const ac = new AbortController()
    const pulling = session().pull(parseReference(`${srv.host}/evil/abort-me`), amd64, store.blobs, ac.signal)
    while (!srv.requests.some((r) => r.path.includes('/blobs/'))) await new Promise((r) => setTimeout(r, 10))
    await new Promise((r) => setTimeout(r, 300)) // a byte or two of the body has come
    const aborted = Date.now()
    ac.abort(new Error('test abort'))
    const e = await pulling.then(
      () => undefined,
      (err: unknown) => err as ImagesmithError,
    )
    expect(e?.code).toBe(ErrorCodes.ABORTED)
    expect(Date.now() - aborted).toBeLessThan(1_000)
    expect(readdirSync(join(store.root, 'tmp'))).toEqual([])
  })

  it('Ctrl-C to `imagesmith pull` while bytes trickle in ends it at once (exit 130, ABORTED)', async () => {
    const srv = await hostile((req, res, s) => (req.url === '/v2/' ? void res.writeHead(200).end('{}') : trickleHeaders(req, s, 200)))
    const cache = await tmpDir('ism-rh-cli-')
    const child = spawn(process.execPath, [join(repo, 'bin', 'imagesmith.js'), 'pull', `${srv.host}/evil/ctrl-c`, '--cache-dir', cache], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const deadline = Date.now() + 30_000
    while (!srv.requests.some((r) => r.path.includes('/manifests/')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(srv.requests.some((r) => r.path.includes('/manifests/'))).toBe(true)
    const sent = Date.now()
    child.kill('SIGINT')
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))])
    if (code === 'hung') child.kill('SIGKILL')
    expect(code).toBe(130)
    expect(Date.now() - sent).toBeLessThan(5_000)
    expect(stderr).toContain('[ABORTED]')
  })
})

describe('Retry-After', () => {
  it('Retry-After: 3600 fails at once with REGISTRY_ERROR naming the wait, instead of waiting before every retry', async () => {
    const srv = await hostile((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}')
      res.writeHead(429, { 'retry-after': '3600', 'content-type': 'application/json' }).end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}')
    })
    const { error, ms } = await ended(async (signal) => session().pull(parseReference(`${srv.host}/evil/throttled`), amd64, (await freshStore()).blobs, signal), 15_000)
    expect(error.code).toBe(ErrorCodes.REGISTRY_ERROR)
    expect(error.details).toMatchObject({ registry: srv.host, status: 429, retryAfterMs: 3_600_000, maxRetryAfterMs: 30_000 })
    expect(error.message).toContain('3600 s')
    expect(ms).toBeLessThan(5_000)
    expect(srv.requests.filter((r) => r.path.includes('/manifests/'))).toHaveLength(1)
  })

  it('an abort while waiting out a Retry-After within the cap is ABORTED at once', async () => {
    const srv = await hostile((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}')
      res.writeHead(503, { 'retry-after': '20' }).end()
    })
    const ac = new AbortController()
    const pulling = session().pull(parseReference(`${srv.host}/evil/wait`), amd64, (await freshStore()).blobs, ac.signal)
    while (!srv.requests.some((r) => r.path.includes('/manifests/'))) await new Promise((r) => setTimeout(r, 10))
    await new Promise((r) => setTimeout(r, 200))
    const aborted = Date.now()
    ac.abort(new Error('test abort'))
    const e = await pulling.then(
      () => undefined,
      (err: unknown) => err as ImagesmithError,
    )
    expect(e?.code).toBe(ErrorCodes.ABORTED)
    expect(Date.now() - aborted).toBeLessThan(1_000)
    expect(srv.requests.filter((r) => r.path.includes('/manifests/'))).toHaveLength(1)
  })
})


describe('oversized documents', () => {
  it('configs past the 8 MiB cap never enter the store: 600 MB stated is refused unread, 9 MB served honestly is refused before fetching, more bytes than stated stop at the stated size', async () => {
    const docs = new Map<string, { bytes: Buffer; mediaType: string }>()
    const huge = { mediaType: OCI_CONFIG, digest: `sha256:${'4'.repeat(64)}`, size: 600_000_000 }
    const hugeManifest = put(docs, OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, config: huge, layers: [] })
    const big = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, history: [{ comment: 'x'.repeat(9 << 20) }] }))
    docs.set(sha(big), { bytes: big, mediaType: OCI_CONFIG })
    const bigManifest = put(docs, OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha(big), size: big.length }, layers: [] })
    // States 1000 bytes; the blob served under its digest is the 9 MB one.
    const lying = put(docs, OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha(big), size: 1000 }, layers: [] })
    const serve = registryOf(docs, hugeManifest.digest)
    const srv = await hostile((req, res) => void (serve(req, res) || res.writeHead(404).end()))

    const store = await freshStore()
    const stated = await ended(async (signal) => session().pull(parseReference(`${srv.host}/evil/huge@${hugeManifest.digest}`), amd64, store.blobs, signal), 20_000)
    expect(stated.error.code).toBe(ErrorCodes.BASE_IMAGE_INVALID)
    expect(stated.error.details).toMatchObject({ digest: huge.digest, size: 600_000_000, limit: 8 << 20 })
    expect(srv.requests.filter((r) => r.path.includes('/blobs/'))).toEqual([])

    const served = await ended(async (signal) => session().pull(parseReference(`${srv.host}/evil/big@${bigManifest.digest}`), amd64, store.blobs, signal), 20_000)
    expect(served.error.code).toBe(ErrorCodes.BASE_IMAGE_INVALID)
    expect(served.error.details).toMatchObject({ digest: sha(big), size: big.length, limit: 8 << 20 })
    expect(await store.blobs.has(sha(big) as never)).toBe(false)

    const cut = await ended(async (signal) => session().pull(parseReference(`${srv.host}/evil/lying@${lying.digest}`), amd64, store.blobs, signal), 20_000)
    expect(cut.error.code).toBe(ErrorCodes.DIGEST_MISMATCH)
    expect(cut.error.details.actual).toBe('more than 1000 bytes')
    expect(await store.blobs.has(sha(big) as never)).toBe(false)
    expect(readdirSync(join(store.root, 'tmp'))).toEqual([])
  })
})
