import { createReadStream } from 'node:fs'
import { Transform, type Readable } from 'node:stream'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'

/** The parts of the registry client a push needs: one authorized request at a time. */
export interface PushSender {
  /**
   * Sends `req` to the push endpoint with an Authorization header valid for `scopes`
   * (re-authenticating once on a 401 challenge). Retries 5xx/429/dropped connections.
   */
  send(req: PushRequest): Promise<PushResponse>
  /** Replaces every secret the client holds with `***` (for error messages built from responses). */
  redact(text: string): string
}

export interface PushRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH'
  /** Absolute URL, or a path (`/v2/…`) on the push endpoint. */
  readonly url: string
  readonly scopes: readonly string[]
  readonly headers?: Readonly<Record<string, string>>
  /** A buffer, or an opener called once per attempt. */
  readonly body?: Buffer | (() => Readable)
  readonly signal?: AbortSignal
}

export interface PushResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** The absolute URL that answered: Location headers are relative to it. */
  readonly url: string
  /** Reads (and ends) the body; at most `max` bytes are kept. */
  text(max?: number): Promise<string>
}

export interface UploadTarget {
  /** `team/app` */
  readonly repository: string
  readonly digest: Digest
  readonly size: number
  /** The blob's file in the store. */
  readonly path: string
  readonly scopes: readonly string[]
  readonly signal?: AbortSignal
}

export interface UploadPolicy {
  /**
   * `monolithic`: the whole blob in one PUT. `chunked`: PATCHes with Content-Range, then a PUT
   * without a body. `auto`: monolithic, unless the registry asks for chunks (an
   * `OCI-Chunk-Min-Length` header) or refuses the monolithic PUT.
   * @default 'auto'
   */
  readonly mode: 'auto' | 'monolithic' | 'chunked'
  /** Bytes per PATCH in chunked mode (raised to the registry's minimum). @default 16 MiB */
  readonly chunkSize: number
  /** Counts bytes put on the wire (retries included). */
  readonly onBytes: (n: number) => void
}

/** What a 416 or a lost response leaves to resume from: the bytes the session holds. */
function rangeEnd(headers: PushResponse['headers']): number | undefined {
  const r = headers['range']
  const m = /^(?:bytes=)?0-(\d+)$/.exec(String(Array.isArray(r) ? r[0] : (r ?? '')))
  return m ? Number(m[1]) + 1 : undefined
}

function location(res: PushResponse, previous: string | undefined, t: UploadTarget, what: string): string {
  const loc = res.headers['location']
  const text = Array.isArray(loc) ? loc[0] : loc
  if (text) return new URL(text, res.url).toString()
  // The spec says every step answers with the session's (possibly new) Location; some registries
  // omit it on PATCH when it did not change.
  if (previous) return previous
  throw uploadInvalid(t, `the registry answered ${what} without a Location for the upload session`, res.status)
}

export function uploadInvalid(t: Pick<UploadTarget, 'repository' | 'digest'>, why: string, status?: number, cause?: unknown): ImagesmithError {
  return new ImagesmithError(
    ErrorCodes.BLOB_UPLOAD_INVALID,
    `uploading ${t.digest} to ${t.repository}: ${why}`,
    { digest: t.digest, repository: t.repository, ...(status !== undefined ? { status } : {}) },
    cause !== undefined ? { cause } : undefined,
  )
}

function withDigest(url: string, digest: Digest): string {
  const u = new URL(url)
  u.searchParams.set('digest', digest)
  return u.toString()
}

function counted(stream: Readable, onBytes: (n: number) => void): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      onBytes(chunk.length)
      cb(null, chunk)
    },
  })
  stream.on('error', (e) => counter.destroy(e))
  return stream.pipe(counter)
}

/**
 * Uploads one blob into an open session (`sessionUrl`, from POST /blobs/uploads/), monolithic or
 * chunked as the policy and the registry decide. Resolves when the registry has committed it.
 */
export async function uploadBlob(sender: PushSender, t: UploadTarget, session: UploadSession, policy: UploadPolicy): Promise<void> {
  try {
    await uploadOnce(sender, t, session.url, session.minChunk, policy)
  } catch (e) {
    // A session the registry dropped (distribution cancels one resumed at a stale offset, e.g. after
    // a lost answer or a missing Location): the whole blob once more, in a fresh session.
    if (!(e instanceof ImagesmithError) || e.code !== ErrorCodes.BLOB_UPLOAD_INVALID || !SESSION_LOST.has(e.details.status as number)) throw e
    const fresh = await openSession(sender, t)
    await uploadOnce(sender, t, fresh.url, fresh.minChunk, policy)
  }
}

/** Answers that mean the session is gone or out of step, not that the blob is wrong. */
const SESSION_LOST = new Set([400, 404, 416])

async function uploadOnce(sender: PushSender, t: UploadTarget, sessionUrl: string, minChunk: number | undefined, policy: UploadPolicy): Promise<void> {
  const mode = policy.mode === 'auto' && minChunk !== undefined && minChunk > 0 ? 'chunked' : policy.mode
  if (mode !== 'chunked') {
    const res = await sender.send({
      method: 'PUT',
      url: withDigest(sessionUrl, t.digest),
      scopes: t.scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(t.size) },
      body: () => counted(createReadStream(t.path, { highWaterMark: 1 << 20 }), policy.onBytes),
      signal: t.signal,
    })
    const body = await res.text(64 << 10)
    if (res.status === 201 || res.status === 204) return
    // Registries that only take chunks refuse a monolithic PUT with one of these; start over chunked.
    if (policy.mode === 'auto' && [400, 405, 413, 416, 501].includes(res.status) && !/DIGEST_INVALID|SIZE_INVALID/.test(body)) {
      const fresh = await openSession(sender, t)
      return uploadChunked(sender, t, fresh.url, fresh.minChunk ?? minChunk, policy)
    }
    if (/DIGEST_INVALID/.test(body)) throw uploadInvalid(t, `the registry computed another digest for the uploaded bytes (${res.status})`, undefined)
    throw uploadInvalid(t, `the registry refused the upload (${res.status}): ${sender.redact(body.slice(0, 300))}`, res.status)
  }
  return uploadChunked(sender, t, sessionUrl, minChunk, policy)
}

export interface UploadSession {
  readonly url: string
  /** `OCI-Chunk-Min-Length`: the registry takes chunks of at least this many bytes. */
  readonly minChunk?: number
}

/** Reads a session out of a 202 answer to POST /blobs/uploads/ (plain or a mount that fell back). */
export function sessionOf(res: PushResponse, t: UploadTarget): UploadSession {
  const v = res.headers['oci-chunk-min-length']
  const n = Number(Array.isArray(v) ? v[0] : v)
  return { url: location(res, undefined, t, 'POST'), ...(Number.isFinite(n) && n > 0 ? { minChunk: n } : {}) }
}

/** POST /v2/<name>/blobs/uploads/: a fresh session. */
export async function openSession(sender: PushSender, t: UploadTarget): Promise<UploadSession> {
  const res = await sender.send({ method: 'POST', url: `/v2/${t.repository}/blobs/uploads/`, scopes: t.scopes, headers: { 'content-length': '0' }, signal: t.signal })
  const body = await res.text(64 << 10)
  if (res.status !== 202) throw uploadInvalid(t, `the registry did not open an upload session (${res.status}): ${sender.redact(body.slice(0, 300))}`, res.status)
  return sessionOf(res, t)
}

async function uploadChunked(sender: PushSender, t: UploadTarget, sessionUrl: string, minChunk: number | undefined, policy: UploadPolicy): Promise<void> {
  const chunk = Math.max(policy.chunkSize, minChunk ?? 0, 1)
  let url = sessionUrl
  let offset = 0
  let resumes = 0
  while (offset < t.size) {
    const end = Math.min(offset + chunk, t.size)
    const start = offset
    const res = await sender.send({
      method: 'PATCH',
      url,
      scopes: t.scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start), 'content-range': `${start}-${end - 1}` },
      body: () => counted(createReadStream(t.path, { start, end: end - 1, highWaterMark: 1 << 20 }), policy.onBytes),
      signal: t.signal,
    })
    const body = await res.text(64 << 10)
    if (res.status === 416) {
      // Out of step with the session (a chunk landed but its answer was lost): ask where it stands.
      if (++resumes > 3) throw uploadInvalid(t, `the registry keeps refusing the range ${start}-${end - 1} (416)`, 416)
      const status = await sender.send({ method: 'GET', url, scopes: t.scopes, signal: t.signal })
      await status.text(4096)
      if (status.status !== 204 && status.status !== 200) throw uploadInvalid(t, `range refused (416) and the session's status is ${status.status}`, status.status)
      url = location(status, url, t, 'GET (upload status)')
      offset = rangeEnd(status.headers) ?? 0
      continue
    }
    if (res.status !== 202 && res.status !== 204) throw uploadInvalid(t, `the registry refused the chunk ${start}-${end - 1} (${res.status}): ${sender.redact(body.slice(0, 300))}`, res.status)
    url = location(res, url, t, 'PATCH')
    offset = rangeEnd(res.headers) ?? end
  }
  const res = await sender.send({ method: 'PUT', url: withDigest(url, t.digest), scopes: t.scopes, headers: { 'content-length': '0' }, signal: t.signal })
  const body = await res.text(64 << 10)
  if (res.status !== 201 && res.status !== 204) throw uploadInvalid(t, `the registry refused to commit the upload (${res.status}): ${sender.redact(body.slice(0, 300))}`, res.status)
}
