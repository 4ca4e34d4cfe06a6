import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import PQueue from 'p-queue'
import { ErrorCodes, ImagesmithError, isImagesmithError, throwIfAborted } from '../errors.js'
import { MediaType, type Digest } from '../oci/media-types.js'
import type { Descriptor } from '../oci/types.js'
import { MAX_MANIFEST_BYTES } from '../sources/resolve.js'
import type { BlobStore } from '../store/blob-store.js'
import { Authenticator, repositoryScope } from './auth.js'
import { CredentialStore } from './credentials.js'
import { originEndpoint, pullEndpoints, type Endpoint } from './endpoints.js'
import { responseError, type RequestSubject } from './errors.js'
import type { RegistryConfig } from './options.js'
import { Transport, backoffDelay, isTransient, readBody, safeUrl, sleep, unreachable, type HttpRequest, type HttpResponse } from './transport.js'

/** Every manifest type a pull understands, as the Accept header lists them. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ')

export interface FetchedManifest {
  readonly bytes: Buffer
  readonly mediaType: string
  /** sha256 of `bytes`: what the manifest is addressed by. */
  readonly digest: Digest
}

/** A request relative to an endpoint: `path` starts with `/v2/`, or `url` is absolute (upload locations). */
export type ClientRequest = Omit<HttpRequest, 'url'> & ({ readonly path: string; readonly url?: undefined } | { readonly url: string; readonly path?: undefined })

/**
 * Drops after some bytes arrived do not use up the retry budget (the download resumes where it
 * stopped), but a blob is resumed at most this often: a server cutting every response short still ends.
 */
export const MAX_RESUMES = 100

export function sha256(bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/**
 * The distribution API client shared by pulls and pushes: one transport (keep-alive, retries,
 * TLS), one authenticator (tokens reused per scope), one credential store, and one bounded
 * queue for blob downloads. Make one per build (or per CLI command) and {@link close} it after.
 */
export class RegistryClient {
  readonly config: RegistryConfig
  readonly transport: Transport
  readonly auth: Authenticator
  readonly credentials: CredentialStore
  readonly #downloads: PQueue
  readonly #inflight = new Map<string, Promise<void>>()
  readonly #minBytesPerSecond: number

  constructor(config: RegistryConfig) {
    this.config = config
    this.transport = new Transport({
      caFile: config.caFile,
      retries: config.retries,
      backoffMs: config.backoffMs,
      idleTimeoutMs: config.idleTimeoutMs,
      deadlineMs: config.deadlineMs,
      maxRetryAfterMs: config.maxRetryAfterMs,
    })
    this.#minBytesPerSecond = config.minBytesPerSecond ?? 64 << 10
    this.credentials = new CredentialStore(config.configDir, config.auths)
    this.auth = new Authenticator(this.transport, this.credentials)
    this.#downloads = new PQueue({ concurrency: config.concurrency })
  }

  /** Mirrors of `registry` (pull only), then the registry itself. */
  pullEndpoints(registry: string): Endpoint[] {
    return pullEndpoints(registry, this.config)
  }

  /** The registry itself: where pushes go. */
  originEndpoint(registry: string): Endpoint {
    return originEndpoint(registry, this.config)
  }

  /**
   * Sends an authorized request for `repository` needing `actions` (`['pull']`, `['pull','push']`,
   * or extra scopes for a cross-repository mount). A 401 is answered once with the challenged
   * credentials; a second 401 or a 403 is UNAUTHORIZED. Other statuses are the caller's to read.
   */
  async request(ep: Endpoint, scopes: readonly string[], req: ClientRequest, subject: RequestSubject): Promise<HttpResponse> {
    const url = req.url ?? `${ep.base}${req.path}`
    // Credentials go to the registry they are for: an absolute URL elsewhere (an upload location on
    // another host) is sent bare, as a redirect there is.
    const own = sameOrigin(url, ep.base)
    let header = own ? await this.auth.header(ep, scopes, req.signal) : undefined
    const send = (h: string | undefined): Promise<HttpResponse> =>
      this.transport.send({ ...req, url, headers: { ...(req.headers ?? {}), ...(h ? { authorization: h } : {}) } })
    let res = await send(header)
    if (res.status === 401 && !(own && sameOrigin(res.url, url))) throw foreignChallenge(ep, res, subject)
    if (res.status === 401 && this.auth.learn(ep, res, scopes, header)) {
      header = await this.auth.header(ep, scopes, req.signal)
      // No credentials for the scheme the registry asks for (basic): the 401 stands.
      if (header === undefined) throw await responseError(ep, res, subject, (s) => this.auth.redact(s))
      res.body.resume()
      res = await send(header)
    }
    if (res.status === 401 && !(own && sameOrigin(res.url, url))) throw foreignChallenge(ep, res, subject)
    if (res.status === 401 || res.status === 403) throw await responseError(ep, res, subject, (s) => this.auth.redact(s))
    return res
  }

  /** `repository:<repo>:pull` */
  pullScope(repository: string): string[] {
    return [repositoryScope(repository, ['pull'])]
  }

  /** GET a manifest or index by tag or digest. The caller verifies a pinned digest. */
  async getManifest(ep: Endpoint, repository: string, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const subject: RequestSubject = { repository, reference, what: 'manifest' }
    const res = await this.request(ep, this.pullScope(repository), { method: 'GET', path: `/v2/${repository}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT }, signal }, subject)
    if (res.status !== 200) throw await responseError(ep, res, subject, (s) => this.auth.redact(s))
    const bytes = await readBody(res, MAX_MANIFEST_BYTES)
    const digest = sha256(bytes)
    const stated = res.headers['docker-content-digest']
    // A registry states the digest of what it sent; a different one means the bytes were altered on the way.
    if (typeof stated === 'string' && stated.startsWith('sha256:') && stated !== digest) {
      throw mismatch(ep, repository, stated, digest, 'manifest')
    }
    const mediaType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim()
    return { bytes, mediaType, digest }
  }

  /**
   * The blob's bytes as one stream, reconnecting with `Range: bytes=N-` when the connection drops
   * (a registry that ignores Range answers 200 and the bytes already read are skipped). Only drops
   * that brought no new bytes count against the retry budget; one that made progress resumes, up to
   * {@link MAX_RESUMES} times. Gives up with REGISTRY_UNREACHABLE; more bytes than the descriptor
   * states is a DIGEST_MISMATCH. Each attempt has a deadline of the transport's plus the remaining
   * bytes at `minBytesPerSecond` (REGISTRY_TIMEOUT past it).
   */
  blobStream(ep: Endpoint, repository: string, desc: Descriptor, signal?: AbortSignal): Readable {
    return Readable.from(this.#blobChunks(ep, repository, desc, signal), { objectMode: false, highWaterMark: 1 << 20 })
  }

  async *#blobChunks(ep: Endpoint, repository: string, desc: Descriptor, signal?: AbortSignal): AsyncGenerator<Buffer> {
    const subject: RequestSubject = { repository, reference: desc.digest, what: 'blob' }
    const path = `/v2/${repository}/blobs/${desc.digest}`
    let got = 0
    let drops = 0
    let resumes = 0
    for (;;) {
      const from = got
      const headers: Record<string, string> = got > 0 ? { range: `bytes=${got}-` } : {}
      const remaining = Number.isFinite(desc.size) ? Math.max(0, desc.size - got) : 0
      const deadlineMs = this.transport.deadlineMs + Math.ceil((remaining / this.#minBytesPerSecond) * 1000)
      const res = await this.request(ep, this.pullScope(repository), { method: 'GET', path, headers, signal, deadlineMs }, subject)
      if (res.status !== 200 && res.status !== 206) throw await responseError(ep, res, subject, (s) => this.auth.redact(s))
      let skip = got > 0 && res.status === 200 ? got : 0
      if (res.status === 206) {
        const start = Number(/bytes\s+(\d+)-/.exec(String(res.headers['content-range'] ?? ''))?.[1] ?? NaN)
        if (start !== got) {
          res.body.destroy()
          throw new ImagesmithError(ErrorCodes.REGISTRY_ERROR, `registry ${ep.host} resumed blob ${desc.digest} at byte ${start}, not ${got}`, { registry: ep.host, digest: desc.digest })
        }
      }
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          let c = chunk
          if (skip > 0) {
            if (c.length <= skip) {
              skip -= c.length
              continue
            }
            c = c.subarray(skip)
            skip = 0
          }
          got += c.length
          if (got > desc.size) {
            res.body.destroy()
            throw mismatch(ep, repository, desc.digest, `more than ${desc.size} bytes`, 'blob')
          }
          yield c
        }
        if (got >= desc.size) return
        throw Object.assign(new Error(`connection closed after ${got} of ${desc.size} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
      } catch (e) {
        if (isImagesmithError(e) || !isTransient(e)) throw e
        res.body.destroy()
        const progressed = got > from
        if (progressed) resumes++
        else drops++
        if (drops > this.transport.retries || resumes > MAX_RESUMES) {
          const err = unreachable(`${ep.base}${path}`, e, drops + resumes)
          const why = progressed ? `was cut short ${resumes} times` : `dropped ${drops} times without sending a byte`
          throw new ImagesmithError(err.code, `${err.message}: the connection ${why} while downloading ${desc.digest} (${got} of ${desc.size} bytes)`, { ...err.details, digest: desc.digest, received: got, size: desc.size, drops, resumes }, { cause: e })
        }
        // Progress resets the backoff: the line works, it broke once more.
        await sleep(backoffDelay(progressed ? 1 : drops, this.transport.backoffMs), signal)
      }
    }
  }

  /**
   * Downloads a blob straight into the store, verified while streaming (DIGEST_MISMATCH and
   * nothing stored when the bytes are wrong); skipped when the store has it. Bounded by the
   * client's queue; one download per digest at a time.
   */
  fetchBlob(ep: Endpoint, repository: string, desc: Descriptor, blobs: BlobStore, signal?: AbortSignal): Promise<void> {
    const key = `${blobs.root}\n${desc.digest}`
    let p = this.#inflight.get(key)
    if (!p) {
      p = this.#downloads.add(async () => {
        throwIfAborted(signal)
        if (await blobs.has(desc.digest)) return
        try {
          await blobs.putStream(this.blobStream(ep, repository, desc, signal), desc.digest)
        } catch (e) {
          if (isImagesmithError(e) && e.code === ErrorCodes.BLOB_CORRUPT) throw mismatch(ep, repository, desc.digest, String(e.details.actual ?? ''), 'blob', e)
          throw e
        }
      }) as Promise<void>
      this.#inflight.set(key, p)
      void p.then(
        () => this.#inflight.delete(key),
        () => this.#inflight.delete(key),
      )
    }
    return p
  }

  close(): void {
    this.transport.close()
  }
}

export function mismatch(ep: Endpoint, repository: string, expected: string, actual: string, what: 'manifest' | 'blob', cause?: unknown): ImagesmithError {
  return new ImagesmithError(
    ErrorCodes.DIGEST_MISMATCH,
    `${what} from ${ep.host}/${repository} does not match ${expected} (got ${actual || 'other bytes'}); nothing was stored`,
    { registry: ep.host, repository, expected, actual, url: safeUrl(`${ep.base}/v2/${repository}`) },
    { cause },
  )
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin
  } catch {
    return false
  }
}

/**
 * A 401 from the host a request was redirected to (object storage, or anyone the registry points
 * at). Its challenge is that host's business: adopting it would send the registry's credentials to
 * its realm and its token back to the registry, so the request fails here instead.
 */
function foreignChallenge(ep: Endpoint, res: HttpResponse, subject: RequestSubject): ImagesmithError {
  res.body.resume()
  const to = safeUrl(res.url)
  return new ImagesmithError(
    ErrorCodes.UNAUTHORIZED,
    `registry ${ep.host} redirected ${subject.what} ${subject.reference ?? subject.repository} to ${to}, which asks for credentials (401); the registry's credentials are not sent there`,
    { registry: ep.host, repository: subject.repository, ...(subject.reference ? { reference: subject.reference } : {}), status: 401, redirectedTo: to },
  )
}
