/**
 * A real `docker-registry` (distribution 2.8) on loopback for registry tests, in three modes:
 * no auth, htpasswd basic auth, and `auth: token` against a token server written here (JWTs
 * RS256-signed with a key made by the test, trusted through a self-signed cert in
 * `rootcertbundle`). Plus a loopback HTTP proxy that can drop connections mid-blob, flip a byte,
 * and counts requests and bytes either way, and seeding with the provisioned bases via skopeo.
 */
import { spawn } from 'node:child_process'
import { X509Certificate, generateKeyPairSync, createSign, randomUUID, createHash } from 'node:crypto'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { cp, readFile, writeFile } from 'node:fs/promises'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { busyboxArchive, debianArchive, busyboxLayout, onProcessExit, removeTree, removeTreeSync, tmpDir } from './testbed.js'
import { runTool } from './tools.js'

export type RegistryAuthMode = 'none' | 'basic' | 'token'

/** The identity (OAuth2 refresh) token the test token server accepts for the test user. */
export const IDENTITY_TOKEN = 'test-identity-token-0123456789'

export interface TokenServer {
  /** `http://127.0.0.1:PORT/token` */
  readonly realm: string
  readonly service: string
  readonly issuer: string
  /** Every token request, in order (scopes as asked, the account when credentials were sent). */
  readonly requests: { readonly scopes: readonly string[]; readonly account?: string; readonly granted: boolean }[]
  /** Seconds a token lives. */
  expiresIn: number
  stop(): Promise<void>
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  readonly host: string
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  readonly dir: string
  readonly mode: RegistryAuthMode
  /** The user that may push and pull (basic and token modes). */
  readonly auth?: { readonly username: string; readonly password: string }
  readonly token?: TokenServer
  /** The self-signed certificate (PEM) a TLS registry serves: what a client must trust. */
  readonly caFile?: string
  /** The registry's log so far. */
  log(): string
  stop(): Promise<void>
}

export interface StartRegistryOptions {
  readonly auth?: RegistryAuthMode
  /** @default 'tester' */
  readonly username?: string
  /** @default 'secret-pass-1234' */
  readonly password?: string
  /** Token mode: anonymous users get pull tokens. @default true */
  readonly anonymousPull?: boolean
  /** Address to listen on; a non-loopback one (the host's) makes clients use TLS unless told otherwise. @default '127.0.0.1' */
  readonly address?: string
  /** Serve HTTPS with a self-signed certificate for `address` (its PEM is {@link TestRegistry.caFile}). */
  readonly tls?: boolean
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function listen(server: http.Server, address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, address, () => resolve((server.address() as AddressInfo).port))
  })
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

async function freePort(address = '127.0.0.1'): Promise<number> {
  const s = http.createServer()
  const port = await listen(s, address)
  await closeServer(s)
  return port
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url')

/** A token server as Docker Hub's: GET realm?service&scope[&account], basic auth optional. */
async function startTokenServer(dir: string, o: { username: string; password: string; identityToken: string; anonymousPull: boolean }): Promise<TokenServer & { certPath: string }> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const keyPath = join(dir, 'token.key')
  const certPath = join(dir, 'token.crt')
  await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  // Node cannot make certificates: openssl signs one for the key the test made.
  await runTool('openssl', ['req', '-new', '-x509', '-key', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=imagesmith-test-token'])
  const certDer = new X509Certificate(await readFile(certPath)).raw.toString('base64')
  const service = 'imagesmith-test-registry'
  const issuer = 'imagesmith-test-issuer'
  const requests: TokenServer['requests'] = []
  const state = { expiresIn: 300 }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => answer(req, Buffer.concat(chunks).toString('utf8'), res))
  })
  const answer = (req: IncomingMessage, body: string, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname !== '/token') return void res.writeHead(404).end()
    // GET with optional basic auth, or POST (OAuth2) with an identity token as refresh token.
    const form = req.method === 'POST' ? new URLSearchParams(body) : url.searchParams
    const scopes = form.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean)
    const authz = req.headers.authorization
    let account: string | undefined
    if (req.method === 'POST') {
      if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== o.identityToken) {
        requests.push({ scopes, granted: false })
        return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"invalid refresh token"}')
      }
      account = o.username
    } else if (authz?.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(authz.slice(6), 'base64').toString('utf8').split(':')
      if (u !== o.username || rest.join(':') !== o.password) {
        requests.push({ scopes, account: u, granted: false })
        return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}')
      }
      account = u
    }
    if (!account && !o.anonymousPull) {
      requests.push({ scopes, granted: false })
      return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"authentication required"}')
    }
    const access = scopes.map((s) => {
      const [type, ...mid] = s.split(':')
      const actions = (mid.pop() ?? '').split(',')
      const allowed = account ? actions : actions.filter((a) => a === 'pull')
      return { type, name: mid.join(':'), actions: allowed }
    })
    requests.push({ scopes, ...(account ? { account } : {}), granted: true })
    const now = Math.floor(Date.now() / 1000)
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] }
    const claims = { iss: issuer, sub: account ?? '', aud: service, exp: now + state.expiresIn, nbf: now - 10, iat: now, jti: randomUUID(), access }
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const sig = createSign('RSA-SHA256').update(signingInput).sign(privateKey)
    const token = `${signingInput}.${b64url(sig)}`
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: state.expiresIn, issued_at: new Date(now * 1000).toISOString() }))
  }
  const port = await listen(server)
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    requests,
    get expiresIn() {
      return state.expiresIn
    },
    set expiresIn(v: number) {
      state.expiresIn = v
    },
    certPath,
    stop: () => closeServer(server),
  }
}

/** Starts docker-registry on a free loopback port with temp storage, in the given auth mode. */
export async function startTestRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const mode = opts.auth ?? 'none'
  const username = opts.username ?? 'tester'
  const password = opts.password ?? 'secret-pass-1234'
  const dir = await tmpDir('ism-reg-')
  let token: (TokenServer & { certPath: string }) | undefined
  const dropExit = onProcessExit(() => removeTreeSync(dir))
  let authYaml = ''
  if (mode === 'basic') {
    const line = (await runTool('htpasswd', ['-Bbn', username, password])).stdout.trim()
    await writeFile(join(dir, 'htpasswd'), `${line}\n`)
    authYaml = `auth:\n  htpasswd:\n    realm: imagesmith-test\n    path: ${join(dir, 'htpasswd')}\n`
  } else if (mode === 'token') {
    token = await startTokenServer(dir, { username, password, identityToken: IDENTITY_TOKEN, anonymousPull: opts.anonymousPull ?? true })
    authYaml = `auth:\n  token:\n    realm: ${token.realm}\n    service: ${token.service}\n    issuer: ${token.issuer}\n    rootcertbundle: ${token.certPath}\n`
  }
  const address = opts.address ?? '127.0.0.1'
  let tlsYaml = ''
  let caFile: string | undefined
  if (opts.tls) {
    caFile = join(dir, 'registry.crt')
    const keyFile = join(dir, 'registry.key')
    await runTool('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '2', '-subj', '/CN=imagesmith-test-registry', '-addext', `subjectAltName=IP:${address}`])
    tlsYaml = `  tls:\n    certificate: ${caFile}\n    key: ${keyFile}\n`
  }
  const probe = (host: string): Promise<number> =>
    new Promise((resolve) => {
      const mod = opts.tls ? https : http
      const r = mod.get(`${opts.tls ? 'https' : 'http'}://${host}/v2/`, { ...(caFile ? { ca: readFileSync(caFile) } : {}) }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      r.on('error', () => resolve(0))
    })
  let lastLog = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const host = `${address}:${await freePort(address)}`
    const config = join(dir, 'config.yml')
    await writeFile(
      config,
      'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n' +
        `storage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\n` +
        `http:\n  addr: ${host}\n` +
        tlsYaml +
        authYaml,
    )
    const logPath = join(dir, `registry-${attempt}.log`)
    const fd = openSync(logPath, 'a')
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', fd, fd] })
    closeSync(fd)
    let exited = false
    const exitP = new Promise<void>((r) => {
      child.once('exit', () => ((exited = true), r()))
      child.once('error', () => ((exited = true), r()))
    })
    const log = (): string => {
      try {
        return readFileSync(logPath, 'utf8')
      } catch {
        return ''
      }
    }
    const deadline = Date.now() + 15_000
    let ready = false
    while (!exited && Date.now() < deadline) {
      const status = await probe(host)
      if (status === 200 || (mode !== 'none' && status === 401)) {
        ready = true
        break
      }
      await sleep(50)
    }
    if (ready) {
      let stopped = false
      return {
        host,
        url: `${opts.tls ? 'https' : 'http'}://${host}`,
        dir,
        mode,
        ...(caFile ? { caFile } : {}),
        ...(mode !== 'none' ? { auth: { username, password } } : {}),
        ...(token ? { token } : {}),
        log,
        async stop() {
          if (stopped) return
          stopped = true
          if (!exited) {
            child.kill('SIGTERM')
            await Promise.race([exitP, sleep(5_000)])
            if (!exited) child.kill('SIGKILL')
            await Promise.race([exitP, sleep(2_000)])
          }
          await token?.stop()
          await removeTree(dir)
          dropExit()
        },
      }
    }
    if (!exited) child.kill('SIGKILL')
    await exitP
    lastLog = log().slice(-4000)
    if (!/address already in use/.test(lastLog)) break
  }
  await token?.stop()
  await removeTree(dir)
  dropExit()
  throw new Error(`docker-registry did not become ready; log tail:\n${lastLog}`)
}

/** `skopeo copy` of any source (`oci-archive:…`, `oci:DIR:TAG`) into `repo:tag` of the registry; returns the pushed manifest digest. */
export async function skopeoPush(reg: Pick<TestRegistry, 'host' | 'auth' | 'dir'>, source: string, repoTag: string, opts: { all?: boolean; format?: 'oci' | 'v2s2' } = {}): Promise<string> {
  const digestFile = join(reg.dir, `digest-${randomUUID()}`)
  const creds = reg.auth ? ['--dest-creds', `${reg.auth.username}:${reg.auth.password}`] : []
  await runTool('skopeo', ['copy', '--quiet', ...(opts.all ? ['--all'] : []), ...(opts.format ? ['--format', opts.format] : []), '--dest-tls-verify=false', ...creds, '--digestfile', digestFile, source, `docker://${reg.host}/${repoTag}`], {
    timeoutMs: 300_000,
  })
  return (await readFile(digestFile, 'utf8')).trim()
}

export interface SeededBases {
  /** Manifest digests as pushed. */
  readonly busybox: string
  readonly debian?: string
  /** The index (two platforms) at `library/multi:latest`, and its two manifests. */
  readonly multi?: { readonly index: string; readonly amd64: string; readonly arm64: string }
}

/**
 * Seeds `library/busybox:latest` (and `library/debian:latest`, and a two-platform index at
 * `library/multi:latest`, when asked) from the provisioned bases.
 */
export async function seedBases(reg: Pick<TestRegistry, 'host' | 'auth' | 'dir'>, opts: { debian?: boolean; multi?: boolean } = {}): Promise<SeededBases> {
  const [busybox, debian, multi] = await Promise.all([
    skopeoPush(reg, `oci-archive:${busyboxArchive()}`, 'library/busybox:latest'),
    opts.debian ? skopeoPush(reg, `oci-archive:${debianArchive()}`, 'library/debian:latest') : undefined,
    opts.multi ? seedMultiPlatform(reg, 'library/multi:latest') : undefined,
  ])
  return { busybox, ...(debian ? { debian } : {}), ...(multi ? { multi } : {}) }
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

/**
 * An OCI index with two platforms: the busybox image as linux/amd64 and the same layers relabelled
 * linux/arm64 (its own config and manifest). Pushed with `skopeo copy --all`.
 */
export async function seedMultiPlatform(reg: Pick<TestRegistry, 'host' | 'auth' | 'dir'>, repoTag: string): Promise<{ index: string; amd64: string; arm64: string }> {
  const layout = join(reg.dir, `multi-${randomUUID()}`)
  await cp(busyboxLayout(), layout, { recursive: true })
  const blob = (d: string): string => join(layout, 'blobs', 'sha256', d.slice(7))
  const put = async (b: Buffer): Promise<string> => {
    const d = sha(b)
    await writeFile(blob(d), b)
    return d
  }
  const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number; mediaType: string }[] }
  const amdDesc = top.manifests[0]!
  const manifest = JSON.parse(await readFile(blob(amdDesc.digest), 'utf8')) as { config: { digest: string; size: number; mediaType: string } }
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as Record<string, unknown>
  const armConfig = Buffer.from(JSON.stringify({ ...config, architecture: 'arm64' }))
  const armConfigDigest = await put(armConfig)
  const armManifest = Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, digest: armConfigDigest, size: armConfig.length } }))
  const armDigest = await put(armManifest)
  const amd = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amdDesc.digest, size: amdDesc.size, platform: { os: 'linux', architecture: 'amd64' } }
  const arm = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: armDigest, size: armManifest.length, platform: { os: 'linux', architecture: 'arm64' } }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [amd, arm] }))
  const indexDigest = await put(index)
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }] }),
  )
  const pushed = await skopeoPush(reg, `oci:${layout}:multi`, repoTag, { all: true })
  await removeTree(layout)
  return { index: pushed, amd64: amdDesc.digest, arm64: armDigest }
}

export interface ProxyFaults {
  /** Requests whose path matches are tampered with. @default /\/blobs\/sha256:/ */
  readonly paths?: RegExp
  /** Cut the connection after this many body bytes of a matching response. */
  readonly dropAfterBytes?: number
  /** How many matching responses to cut (Infinity: every one). @default 1 */
  readonly drops?: number
  /** Flip one byte in the middle of every matching response body. */
  readonly corrupt?: boolean
  /** Redirect matching GETs (307) to the same path on this `host:port`, with a query as signed storage URLs have. */
  readonly redirectTo?: string
  /** Close the connection without answering matching requests, `times` times. */
  readonly hangUp?: { readonly times: number }
  /** Answer matching requests with this status instead (e.g. 503), `times` times. */
  readonly status?: { readonly code: number; readonly times: number; readonly retryAfter?: string }
}

export interface TestProxy {
  /** `127.0.0.1:PORT` */
  readonly host: string
  readonly url: string
  /** Requests seen (method, path, range header). */
  readonly requests: { readonly method: string; readonly path: string; readonly range?: string; readonly authorized: boolean; readonly authorization?: string }[]
  /** Request body bytes forwarded to the registry (uploads). */
  bytesUp: number
  /** Response body bytes sent back. */
  bytesDown: number
  /** Responses cut by `dropAfterBytes` so far (the cut has been handed to the socket). */
  dropped: number
  faults: ProxyFaults
  stop(): Promise<void>
}

/**
 * A loopback HTTP proxy in front of a registry (a "mirror" or origin in tests): forwards every
 * request unchanged and injects the configured faults into matching responses.
 */
export async function startProxy(target: string, faults: ProxyFaults = {}): Promise<TestProxy> {
  const state = { drops: 0, statuses: 0, hangUps: 0 }
  const proxy: TestProxy = {
    host: '',
    url: '',
    requests: [],
    bytesUp: 0,
    bytesDown: 0,
    dropped: 0,
    faults,
    stop: async () => undefined,
  }
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/'
    proxy.requests.push({ method: req.method ?? 'GET', path, ...(req.headers.range ? { range: String(req.headers.range) } : {}), authorized: req.headers.authorization !== undefined, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) })
    const f = proxy.faults
    const matches = (f.paths ?? /\/blobs\/sha256:/).test(path)
    if (matches && f.redirectTo && req.method === 'GET') {
      res.writeHead(307, { location: `http://${f.redirectTo}${path}?X-Signature=test` })
      return void res.end()
    }
    if (matches && f.hangUp && state.hangUps < f.hangUp.times) {
      state.hangUps++
      return void req.socket.destroy()
    }
    if (matches && f.status && state.statuses < f.status.times) {
      state.statuses++
      res.writeHead(f.status.code, { 'content-type': 'application/json', ...(f.status.retryAfter ? { 'retry-after': f.status.retryAfter } : {}) })
      return void res.end('{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}')
    }
    const up = http.request({ host: target.split(':')[0], port: Number(target.split(':')[1]), method: req.method, path, headers: { ...req.headers, host: target } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      const drop = matches && f.dropAfterBytes !== undefined && req.method === 'GET'
      let sent = 0
      const total = Number(r.headers['content-length'] ?? 0)
      let flipped = false
      r.on('data', (chunk: Buffer) => {
        let c = chunk
        if (matches && f.corrupt && !flipped && req.method === 'GET' && r.statusCode === 200) {
          const at = Math.floor(total / 2) - sent
          if (at >= 0 && at < c.length) {
            c = Buffer.from(c)
            c[at] = c[at]! ^ 0xff
            flipped = true
          }
        }
        if (drop && sent + c.length > f.dropAfterBytes! && state.drops < (f.drops ?? 1)) {
          state.drops++
          const part = c.subarray(0, Math.max(0, f.dropAfterBytes! - sent))
          sent += part.length
          proxy.bytesDown += part.length
          res.write(part, () => {
            res.socket?.destroy()
            proxy.dropped++
          })
          r.destroy()
          return
        }
        sent += c.length
        proxy.bytesDown += c.length
        res.write(c)
      })
      r.on('end', () => res.end())
      r.on('error', () => res.socket?.destroy())
    })
    up.on('error', () => res.socket?.destroy())
    req.on('data', (c: Buffer) => (proxy.bytesUp += c.length))
    req.pipe(up)
  })
  const port = await listen(server)
  Object.assign(proxy, { host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}`, stop: () => closeServer(server) })
  return proxy
}

/** Every file under `root` whose bytes contain `needle` (to prove a secret was never written). */
export async function filesContaining(root: string, needle: string): Promise<string[]> {
  const r = await runTool('grep', ['-rlF', '--', needle, root], { allowFailure: true })
  return r.stdout.split('\n').filter(Boolean)
}
