/**
 * Pulls from a real docker-registry (distribution 2.8) on loopback: by tag and digest, from an
 * index with two platforms, with basic and token auth, with credentials from config.json and
 * credential helpers, and through a loopback proxy that drops connections, answers 503 or flips a
 * byte. Nothing here is mocked: the registry, token flow and skopeo seeding are real.
 */
import { chmodSync, existsSync, readdirSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCodes, isImagesmithError, type ImagesmithError } from '../../src/errors.js'
import type { Digest } from '../../src/oci/media-types.js'
import { resolveRegistryOptions } from '../../src/pipeline/resolve-options.js'
import { parseReference } from '../../src/reference/reference.js'
import { RegistryClient } from '../../src/registry/client.js'
import type { RegistryOptions } from '../../src/registry/options.js'
import { PullSession } from '../../src/registry/pull.js'
import { Store } from '../../src/store/store.js'
import { IDENTITY_TOKEN, filesContaining, seedBases, skopeoPush, startProxy, startTestRegistry, type SeededBases, type TestProxy, type TestRegistry } from '../helpers/registry.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { startHostile, type HostileServer } from '../helpers/hostile.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['docker-registry', 'skopeo', 'htpasswd', 'openssl'], { needsRoot: false })
const amd64 = { os: 'linux', architecture: 'amd64' }

describe.skipIf(bed.skip)('registry pull', () => {
  let plain: TestRegistry
  let basic: TestRegistry
  let token: TestRegistry
  let seeded: SeededBases
  const proxies: TestProxy[] = []
  const hostiles: HostileServer[] = []
  const sessions: PullSession[] = []

  beforeAll(async () => {
    ;[plain, basic, token] = await Promise.all([startTestRegistry(), startTestRegistry({ auth: 'basic' }), startTestRegistry({ auth: 'token' })])
    ;[seeded] = await Promise.all([seedBases(plain, { multi: true }), seedBases(basic), seedBases(token)])
  })
  afterAll(async () => {
    for (const s of sessions) s.client.close()
    await Promise.all([...proxies.map((p) => p.stop()), ...hostiles.map((h) => h.stop()), plain?.stop(), basic?.stop(), token?.stop()])
    await cleanupTmpDirs()
  })

  async function freshStore(): Promise<Store> {
    const s = new Store(await tmpDir('ism-rp-'))
    await s.init()
    return s
  }
  function session(opts: RegistryOptions = {}, env: NodeJS.ProcessEnv = {}): PullSession {
    const s = new PullSession(new RegistryClient({ ...resolveRegistryOptions(opts, env), backoffMs: 20 }))
    sessions.push(s)
    return s
  }
  async function proxy(target: string, faults: Parameters<typeof startProxy>[1] = {}): Promise<TestProxy> {
    const p = await startProxy(target, faults)
    proxies.push(p)
    return p
  }
  async function failure(p: Promise<unknown>): Promise<ImagesmithError> {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(isImagesmithError(e), String(e)).toBe(true)
    return e as ImagesmithError
  }
  const blobFiles = (store: Store): string[] => {
    const dir = join(store.root, 'blobs', 'sha256')
    return existsSync(dir) ? readdirSync(dir) : []
  }

  it('pulls by tag into the store (manifest, config, layers verified) and skips blobs already there', async () => {
    const store = await freshStore()
    const p = await proxy(plain.host)
    const s = session()
    const img = await s.pull(parseReference(`${p.host}/library/busybox`), amd64, store.blobs)
    expect(img.digest).toBe(seeded.busybox)
    expect(img.manifestDigest).toBe(seeded.busybox)
    expect(img.layers).toHaveLength(1)
    for (const d of [img.manifestDigest, img.configDigest, ...img.layers.map((l) => l.digest)]) expect(await store.blobs.has(d)).toBe(true)
    expect(s.bases).toEqual([{ ref: `${p.host}/library/busybox:latest`, digest: seeded.busybox }])

    // A second session (another build) resolves the tag again but downloads no blob it has.
    const blobGets = () => p.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length
    const before = blobGets()
    expect(before).toBe(2) // config + layer
    await session().pull(parseReference(`${p.host}/library/busybox:latest`), amd64, store.blobs)
    expect(blobGets()).toBe(before)
  })

  it('pulls by digest and verifies the manifest bytes against it', async () => {
    const store = await freshStore()
    const ref = parseReference(`${plain.host}/library/busybox@${seeded.busybox}`)
    const img = await session().pull(ref, amd64, store.blobs)
    expect(img.manifestDigest).toBe(seeded.busybox)

    // A digest the registry does not have: MANIFEST_UNKNOWN.
    const other = `sha256:${'0'.repeat(64)}`
    const missing = await failure(session().pull(parseReference(`${plain.host}/library/busybox@${other}`), amd64, store.blobs))
    expect(missing.code).toBe(ErrorCodes.MANIFEST_UNKNOWN)

    // Bytes altered on the way (a proxy flips one): DIGEST_MISMATCH, nothing stored.
    const bad = await proxy(plain.host, { paths: /\/manifests\//, corrupt: true })
    const fresh = await freshStore()
    const e = await failure(session().pull(parseReference(`${bad.host}/library/busybox@${seeded.busybox}`), amd64, fresh.blobs))
    expect(e.code).toBe(ErrorCodes.DIGEST_MISMATCH)
    expect(blobFiles(fresh)).toEqual([])
  })

  it('pulls by tag from an index with two platforms: the host platform by default, another when asked, PLATFORM_NOT_FOUND listing both otherwise', async () => {
    const store = await freshStore()
    const ref = parseReference(`${plain.host}/library/multi`)
    const s = session()
    const host = await s.pull(ref, amd64, store.blobs)
    expect(host.digest).toBe(seeded.multi!.index)
    expect(host.manifestDigest).toBe(seeded.multi!.amd64)
    expect(host.config.architecture).toBe('amd64')
    const arm = await s.pull(ref, { os: 'linux', architecture: 'arm64' }, store.blobs)
    expect(arm.manifestDigest).toBe(seeded.multi!.arm64)
    expect(arm.config.architecture).toBe('arm64')
    expect(arm.digest).toBe(host.digest) // the tag resolved once
    const e = await failure(s.pull(ref, { os: 'linux', architecture: 's390x' }, store.blobs))
    expect(e.code).toBe(ErrorCodes.PLATFORM_NOT_FOUND)
    expect(e.details.available).toEqual(['linux/amd64', 'linux/arm64'])
    expect(e.message).toContain('linux/amd64, linux/arm64')
  })

  it('Docker schema 2 manifests pull like OCI ones; their layer types are written as OCI', async () => {
    const digest = await skopeoPush(plain, `oci-archive:${busyboxArchive()}`, 'library/busybox-v2s2:latest', { format: 'v2s2' })
    const store = await freshStore()
    const img = await session().pull(parseReference(`${plain.host}/library/busybox-v2s2`), amd64, store.blobs)
    expect(img.digest).toBe(digest)
    expect(img.manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')
    expect(img.manifest.layers[0]!.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip')
    expect(img.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip')
  })

  it('an unknown repository or tag is MANIFEST_UNKNOWN naming the reference', async () => {
    const store = await freshStore()
    const repo = await failure(session().pull(parseReference(`${plain.host}/library/nope:1`), amd64, store.blobs))
    expect(repo.code).toBe(ErrorCodes.MANIFEST_UNKNOWN)
    expect(repo.message).toContain(`${plain.host}/library/nope:1`)
    expect(repo.details).toMatchObject({ registry: plain.host, repository: 'library/nope', reference: '1', status: 404 })
    const tag = await failure(session().pull(parseReference(`${plain.host}/library/busybox:no-such-tag`), amd64, store.blobs))
    expect(tag.code).toBe(ErrorCodes.MANIFEST_UNKNOWN)
  })

  it('basic auth: explicit credentials pull; a wrong password is UNAUTHORIZED and the password is nowhere in the error', async () => {
    const store = await freshStore()
    const ref = parseReference(`${basic.host}/library/busybox`)
    const ok = await session({ auths: { [basic.host]: basic.auth! } }).pull(ref, amd64, store.blobs)
    expect(ok.digest).toBe(seeded.busybox)

    const wrong = 'Wr0ng-Passw0rd-xyz'
    const e = await failure(session({ auths: { [basic.host]: { username: basic.auth!.username, password: wrong } } }).pull(ref, amd64, (await freshStore()).blobs))
    expect(e.code).toBe(ErrorCodes.UNAUTHORIZED)
    const everything = JSON.stringify({ message: e.message, details: e.details, stack: e.stack, cause: String(e.cause) })
    expect(everything).not.toContain(wrong)
    expect(everything).not.toContain(Buffer.from(`${basic.auth!.username}:${wrong}`).toString('base64'))

    const anon = await failure(session().pull(ref, amd64, (await freshStore()).blobs))
    expect(anon.code).toBe(ErrorCodes.UNAUTHORIZED)
    // No secret reached the store either.
    expect(await filesContaining(store.root, basic.auth!.password)).toEqual([])
  })

  it('token auth: anonymous and authenticated bearer tokens, one token request per scope, reused until it expires', async () => {
    const store = await freshStore()
    const t = token.token!
    const start = t.requests.length
    const anon = session()
    await anon.pull(parseReference(`${token.host}/library/busybox`), amd64, store.blobs)
    const anonRequests = t.requests.slice(start)
    // manifest, config and layer: three registry requests, one token (scope repository:library/busybox:pull).
    expect(anonRequests).toEqual([{ scopes: ['repository:library/busybox:pull'], granted: true }])
    expect(anon.client.auth.tokenRequests).toBe(1)

    const authed = session({ auths: { [token.host]: token.auth! } })
    await authed.pull(parseReference(`${token.host}/library/busybox`), amd64, (await freshStore()).blobs)
    await authed.pull(parseReference(`${token.host}/library/busybox`), amd64, (await freshStore()).blobs)
    expect(t.requests.slice(start + 1)).toEqual([{ scopes: ['repository:library/busybox:pull'], account: token.auth!.username, granted: true }])

    // A token past its lifetime is not reused.
    t.expiresIn = 6 // seconds; the client stops reusing a token 5 s before it expires
    try {
      const short = session({ auths: { [token.host]: token.auth! } })
      await short.pull(parseReference(`${token.host}/library/busybox`), amd64, (await freshStore()).blobs)
      // Usable for 1 s: a pull slowed by a loaded machine may itself outlive one token, so count from here.
      const before = short.client.auth.tokenRequests
      expect(before).toBeGreaterThanOrEqual(1)
      await new Promise((r) => setTimeout(r, 1_200)) // every token issued so far is now past its usable life
      await short.pull(parseReference(`${token.host}/library/busybox:latest`), amd64, (await freshStore()).blobs)
      expect(short.client.auth.tokenRequests).toBeGreaterThan(before)
    } finally {
      t.expiresIn = 300
    }

    const wrong = 'N0t-The-Passw0rd'
    const e = await failure(session({ auths: { [token.host]: { username: 'tester', password: wrong } } }).pull(parseReference(`${token.host}/library/busybox`), amd64, (await freshStore()).blobs))
    expect(e.code).toBe(ErrorCodes.UNAUTHORIZED)
    expect(JSON.stringify({ m: e.message, d: e.details })).not.toContain(wrong)

    // An identity token (config.json `identitytoken`) is sent as an OAuth2 refresh token.
    const cfg = await tmpDir('ism-idt-')
    await writeFile(join(cfg, 'config.json'), JSON.stringify({ auths: { [token.host]: { identitytoken: IDENTITY_TOKEN } } }))
    const before = t.requests.length
    await session({}, { DOCKER_CONFIG: cfg }).pull(parseReference(`${token.host}/library/busybox`), amd64, (await freshStore()).blobs)
    expect(t.requests.slice(before)).toEqual([{ scopes: ['repository:library/busybox:pull'], account: token.auth!.username, granted: true }])
    await writeFile(join(cfg, 'config.json'), JSON.stringify({ auths: { [token.host]: { identitytoken: 'revoked-token-value' } } }))
    const revoked = await failure(session({}, { DOCKER_CONFIG: cfg }).pull(parseReference(`${token.host}/library/busybox`), amd64, (await freshStore()).blobs))
    expect(revoked.code).toBe(ErrorCodes.UNAUTHORIZED)
    expect(JSON.stringify({ m: revoked.message, d: revoked.details })).not.toContain('revoked-token-value')
  })

  it('credentials from config.json: base64 auth, username/password, credHelpers and credsStore through docker-credential-* on PATH', async () => {
    const dir = await tmpDir('ism-dcfg-')
    const ref = parseReference(`${basic.host}/library/busybox`)
    const { username, password } = basic.auth!
    const pullWith = async (config: unknown): Promise<Digest> => {
      await writeFile(join(dir, 'config.json'), JSON.stringify(config))
      return (await session({}, { DOCKER_CONFIG: dir }).pull(ref, amd64, (await freshStore()).blobs)).digest
    }
    expect(await pullWith({ auths: { [basic.host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } })).toBe(seeded.busybox)
    expect(await pullWith({ auths: { [`http://${basic.host}/v2/`]: { username, password } } })).toBe(seeded.busybox)

    // A helper written by the test: logs what it was asked, answers from its own table.
    const bin = join(dir, 'bin')
    await mkdir(bin)
    const log = join(dir, 'helper.log')
    const helper = join(bin, 'docker-credential-test')
    await writeFile(
      helper,
      `#!/bin/sh\nread server\necho "$1 $server" >> ${log}\n` +
        `if [ "$server" = "${basic.host}" ]; then printf '{"ServerURL":"%s","Username":"${username}","Secret":"${password}"}' "$server"; exit 0; fi\n` +
        `echo "credentials not found in native keychain"; exit 1\n`,
    )
    chmodSync(helper, 0o755)
    const path = process.env.PATH
    process.env.PATH = `${bin}:${path}`
    try {
      expect(await pullWith({ credHelpers: { [basic.host]: 'test' } })).toBe(seeded.busybox)
      expect(await pullWith({ credsStore: 'test', auths: { [basic.host]: {} } })).toBe(seeded.busybox)
      // Not found in the store: anonymous, which this registry refuses.
      await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'test' }))
      const e = await failure(session({}, { DOCKER_CONFIG: dir }).pull(parseReference(`${token.host}/library/nope`), amd64, (await freshStore()).blobs))
      expect(e.code).toBe(ErrorCodes.MANIFEST_UNKNOWN) // anonymous pull tokens are granted there; the repo is missing
    } finally {
      process.env.PATH = path
    }
    expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual([`get ${basic.host}`, `get ${basic.host}`, `get ${token.host}`])
  })

  it('a connection dropped mid-blob is resumed with Range and completes', async () => {
    const store = await freshStore()
    const p = await proxy(plain.host, { dropAfterBytes: 300_000, drops: 2 })
    const img = await session().pull(parseReference(`${p.host}/library/busybox`), amd64, store.blobs)
    expect(img.digest).toBe(seeded.busybox)
    const layer = img.layers[0]!
    expect(await store.blobs.has(layer.digest)).toBe(true)
    const layerGets = p.requests.filter((r) => r.path.endsWith(layer.digest))
    expect(layerGets.map((r) => r.range)).toEqual([undefined, 'bytes=300000-', 'bytes=600000-'])
  })

  it('a connection that keeps dropping after some bytes resumes each time without using up the retry budget', async () => {
    const store = await freshStore()
    // 200 kB a response: the 1 MB layer takes 6 of them, more than the 4 retries a drop without progress gets.
    const p = await proxy(plain.host, { dropAfterBytes: 200_000, drops: Infinity, paths: /\/blobs\/sha256:a8fc/ })
    const img = await session().pull(parseReference(`${p.host}/library/busybox`), amd64, store.blobs)
    expect(img.digest).toBe(seeded.busybox)
    const layer = img.layers[0]!
    expect(await store.blobs.has(layer.digest)).toBe(true)
    const ranges = p.requests.filter((r) => r.path.endsWith(layer.digest)).map((r) => r.range)
    expect(ranges).toEqual([undefined, ...Array.from({ length: Math.ceil(layer.size / 200_000) - 1 }, (_, i) => `bytes=${(i + 1) * 200_000}-`)])
  })

  it('resuming is bounded too: a registry cutting every response after a few bytes is REGISTRY_UNREACHABLE after 100 resumes, in bounded time', async () => {
    const store = await freshStore()
    const p = await proxy(plain.host, { dropAfterBytes: 2_000, drops: Infinity, paths: /\/blobs\/sha256:a8fc/ })
    const started = Date.now()
    const e = await failure(session().pull(parseReference(`${p.host}/library/busybox`), amd64, store.blobs))
    expect(e.code).toBe(ErrorCodes.REGISTRY_UNREACHABLE)
    expect(e.message).toMatch(/cut short 101 times/)
    expect(e.details).toMatchObject({ resumes: 101, drops: 0, received: 202_000 })
    expect(Date.now() - started).toBeLessThan(60_000)
    expect(p.requests.filter((r) => r.path.includes('/blobs/sha256:a8fc'))).toHaveLength(101)
    expect(blobFiles(store).some((f) => f.startsWith('a8fc'))).toBe(false)
    expect(readdirSync(join(store.root, 'tmp'))).toEqual([])
  })

  it('a registry that always drops gives a clear REGISTRY_UNREACHABLE after the retry budget, and nothing is stored', async () => {
    const store = await freshStore()
    // Headers, then the connection closes before a byte of the body: no progress, so every drop counts.
    const p = await proxy(plain.host, { dropAfterBytes: 0, drops: Infinity, paths: /\/blobs\/sha256:a8fc/ })
    const e = await failure(session({ retries: 2 }).pull(parseReference(`${p.host}/library/busybox`), amd64, store.blobs))
    expect(e.code).toBe(ErrorCodes.REGISTRY_UNREACHABLE)
    expect(e.message).toMatch(/dropped 3 times/)
    expect(e.details).toMatchObject({ registry: p.host, attempts: 3 })
    expect(p.requests.filter((r) => r.path.includes('/blobs/sha256:a8fc'))).toHaveLength(3)
    expect(blobFiles(store).some((f) => f.startsWith('a8fc'))).toBe(false)
    expect(readdirSync(join(store.root, 'tmp'))).toEqual([])
  })

  it('5xx, 429 (honouring Retry-After) and connections closed before an answer are retried', async () => {
    const store = await freshStore()
    const p = await proxy(plain.host, { status: { code: 429, times: 1, retryAfter: '1' } })
    const started = Date.now()
    const img = await session().pull(parseReference(`${p.host}/library/busybox`), amd64, store.blobs)
    expect(img.digest).toBe(seeded.busybox)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000)
    const p2 = await proxy(plain.host, { status: { code: 503, times: 2 } })
    await session().pull(parseReference(`${p2.host}/library/busybox`), amd64, (await freshStore()).blobs)
    expect(p2.requests.filter((r) => r.path.includes('/blobs/')).length).toBe(4) // two 503s, then config and layer
    const p3 = await proxy(plain.host, { paths: /\/manifests\//, hangUp: { times: 2 } })
    expect((await session().pull(parseReference(`${p3.host}/library/busybox`), amd64, (await freshStore()).blobs)).digest).toBe(seeded.busybox)
    expect(p3.requests.filter((r) => r.path.includes('/manifests/')).length).toBe(3)
  })

  it('an abort while a dropped download waits for its retry is ABORTED at once and leaves no blob or temp file', async () => {
    const store = await freshStore()
    // Cut before any byte: a drop without progress waits out the backoff (5 s) before its retry.
    const p = await proxy(plain.host, { dropAfterBytes: 0, drops: Infinity, paths: /\/blobs\/sha256:a8fc/ })
    const ac = new AbortController()
    const s = new PullSession(new RegistryClient({ ...resolveRegistryOptions({}, {}), backoffMs: 5_000 }))
    sessions.push(s)
    const pulling = s.pull(parseReference(`${p.host}/library/busybox`), amd64, store.blobs, ac.signal)
    const blobRequests = () => p.requests.filter((r) => r.path.includes('/blobs/sha256:a8fc')).length
    for (const end = Date.now() + 30_000; p.dropped === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10))
    expect(p.dropped, 'the download was never dropped').toBe(1)
    // Dropped, and its retry not sent: the pull is in its backoff wait now.
    expect(blobRequests()).toBe(1)
    const aborted = Date.now()
    ac.abort(new Error('test abort'))
    const e = await failure(pulling)
    expect(e.code).toBe(ErrorCodes.ABORTED)
    expect(Date.now() - aborted).toBeLessThan(2_000)
    expect(blobRequests()).toBe(1)
    expect(blobFiles(store).some((f) => f.startsWith('a8fc'))).toBe(false)
    expect(readdirSync(join(store.root, 'tmp'))).toEqual([])
  })

  it('corrupted blob bytes are DIGEST_MISMATCH and nothing is stored', async () => {
    const store = await freshStore()
    const p = await proxy(plain.host, { corrupt: true, paths: /\/blobs\/sha256:a8fc/ })
    const e = await failure(session().pull(parseReference(`${p.host}/library/busybox`), amd64, store.blobs))
    expect(e.code).toBe(ErrorCodes.DIGEST_MISMATCH)
    expect(e.details.expected).toMatch(/^sha256:a8fc/)
    expect(blobFiles(store).some((f) => f.startsWith('a8fc'))).toBe(false)
    expect(readdirSync(join(store.root, 'tmp'))).toEqual([])
  })

  it('mirrors: docker.io references come from the mirror; a failing mirror falls back to the next, then the origin', async () => {
    const store = await freshStore()
    const mirror = await proxy(plain.host)
    const viaMirror = await session({ mirrors: { 'docker.io': [mirror.host] } }).pull(parseReference('busybox'), amd64, store.blobs)
    expect(viaMirror.digest).toBe(seeded.busybox)
    expect(mirror.requests.some((r) => r.path === '/v2/library/busybox/manifests/latest')).toBe(true)

    // The same through the environment variable (read where defaults are resolved).
    const viaEnv = await session({}, { IMAGESMITH_REGISTRY_MIRRORS: `docker.io=${mirror.host}` }).pull(parseReference('docker.io/library/busybox:latest'), amd64, (await freshStore()).blobs)
    expect(viaEnv.digest).toBe(seeded.busybox)

    // Mirror 1 refuses connections, mirror 2 has no such repo (404), the origin serves it.
    const origin = await proxy(plain.host)
    const empty = await startTestRegistry()
    try {
      const s = session({ mirrors: { [origin.host]: ['127.0.0.1:9', empty.host] } })
      const img = await s.pull(parseReference(`${origin.host}/library/busybox`), amd64, (await freshStore()).blobs)
      expect(img.digest).toBe(seeded.busybox)
      expect(origin.requests.some((r) => r.path.includes('/manifests/latest'))).toBe(true)
    } finally {
      await empty.stop()
    }
  })

  it('what a pull stored serves later pulls: a pinned digest without asking the registry, a tag from the store when no registry is in reach', async () => {
    const store = await freshStore()
    const p = await proxy(plain.host)
    const ref = parseReference(`${p.host}/library/busybox`)
    expect((await session().pull(ref, amd64, store.blobs)).digest).toBe(seeded.busybox)
    const seen = p.requests.length
    const pinned = await session().pull(parseReference(`${p.host}/library/busybox@${seeded.busybox}`), amd64, store.blobs)
    expect(pinned.manifestDigest).toBe(seeded.busybox)
    expect(p.requests.length).toBe(seen) // nothing asked: manifest, config and layer were all stored

    await p.stop() // the registry is gone: connections are refused
    const offline = await session().pull(ref, amd64, store.blobs)
    expect(offline.digest).toBe(seeded.busybox)
    const e = await failure(session().pull(ref, amd64, (await freshStore()).blobs))
    expect(e.code).toBe(ErrorCodes.REGISTRY_UNREACHABLE)
    expect(e.details).toMatchObject({ registry: p.host, errno: 'ECONNREFUSED' })
  })

  it('a blob GET redirected to another host (object storage) follows without the Authorization header', async () => {
    const storage = await proxy(plain.host)
    const origin = await proxy(basic.host, { redirectTo: storage.host })
    const store = await freshStore()
    const img = await session({ auths: { [origin.host]: basic.auth! } }).pull(parseReference(`${origin.host}/library/busybox`), amd64, store.blobs)
    expect(img.digest).toBe(seeded.busybox)
    expect(origin.requests.filter((r) => r.path.includes('/blobs/')).every((r) => r.authorized)).toBe(true)
    const stored = storage.requests.filter((r) => r.path.includes('/blobs/'))
    expect(stored).toHaveLength(2)
    expect(stored.every((r) => !r.authorized)).toBe(true)
  })

  it("a redirect target that challenges for credentials gets none: UNAUTHORIZED naming it; the registry's credentials never reach its realm, its token never reaches the registry", async () => {
    const evilToken = 'evil-token-0123456789abcdef'
    const hostile = await startHostile((req, res, srv) => {
      if (req.url?.startsWith('/token')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: evilToken, access_token: evilToken }))
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${srv.url}/token",service="storage",scope="blob"`, 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}')
    })
    hostiles.push(hostile)
    const origin = await proxy(basic.host, { redirectTo: hostile.host })
    const store = await freshStore()
    const e = await failure(session({ auths: { [origin.host]: basic.auth! } }).pull(parseReference(`${origin.host}/library/busybox`), amd64, store.blobs))
    // Credentials went to the registry only: nothing reached the redirect target's realm, no header the target itself.
    expect(hostile.requests.filter((r) => r.path.startsWith('/token'))).toEqual([])
    expect(hostile.requests.length).toBeGreaterThan(0)
    expect(hostile.requests.every((r) => r.headers.authorization === undefined)).toBe(true)
    // And the target's token never reached the registry: every request there carried the user's basic credentials or nothing.
    const blobRequests = origin.requests.filter((r) => r.path.includes('/blobs/'))
    expect(blobRequests.length).toBeGreaterThan(0)
    expect(origin.requests.some((r) => r.authorization?.includes(evilToken))).toBe(false)
    expect(blobRequests.every((r) => r.authorization?.startsWith('Basic '))).toBe(true)
    expect(e.code).toBe(ErrorCodes.UNAUTHORIZED)
    expect(String(e.details.redirectedTo)).toMatch(new RegExp(`^${hostile.url}/v2/library/busybox/blobs/sha256:`))
    expect(e.details.registry).toBe(origin.host)
    expect(blobFiles(store)).toHaveLength(1) // the manifest only
  })

  it('TLS for registries off loopback (system CAs plus a CA file); plain HTTP there only when listed as insecure', async () => {
    const address = hostAddress()!
    expect(address, 'a non-loopback IPv4 address of this machine to test TLS on').toBeDefined()
    const [secure, insecure] = await Promise.all([startTestRegistry({ address, tls: true }), startTestRegistry({ address })])
    try {
      const [digest] = await Promise.all([seedBases(secure).then((b) => b.busybox), seedBases(insecure)])
      const ref = parseReference(`${secure.host}/library/busybox`)
      const untrusted = await failure(session().pull(ref, amd64, (await freshStore()).blobs))
      expect(untrusted.code).toBe(ErrorCodes.REGISTRY_UNREACHABLE)
      expect(untrusted.message).toMatch(/SELF_SIGNED|CERT|certificate/i)
      expect((await session({ caFile: secure.caFile! }).pull(ref, amd64, (await freshStore()).blobs)).digest).toBe(digest)

      const plainRef = parseReference(`${insecure.host}/library/busybox`)
      const refused = await failure(session().pull(plainRef, amd64, (await freshStore()).blobs))
      expect(refused.code).toBe(ErrorCodes.REGISTRY_UNREACHABLE) // TLS to a plain-HTTP registry
      expect((await session({ insecure: [insecure.host] }).pull(plainRef, amd64, (await freshStore()).blobs)).digest).toBe(digest)
    } finally {
      await Promise.all([secure.stop(), insecure.stop()])
    }
  })
})

/** The host's first non-loopback IPv4 address. */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  return undefined
}
