/**
 * ADD's URL sources: fetched (redirects followed) into a temp file inside the store while being
 * hashed, checked against `--checksum`, and described the way BuildKit's HTTP source does: the
 * file is named after the URL's last path segment, has mode 0600 and, when the server sends
 * Last-Modified, that time as its mtime.
 */
import { createHash } from 'node:crypto'
import { createWriteStream, promises as fsp } from 'node:fs'
import { join, posix } from 'node:path'
import { once } from 'node:events'
import { CopyError, ErrorCodes, ImagesmithError, abortError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import { ownerTag } from '../util/owner.js'

export function isUrl(src: string): boolean {
  return /^https?:\/\//i.test(src)
}

/** BuildKit's dockerfile2llb: the last segment of the URL's (decoded) path, else `__unnamed__`. */
export function urlFileName(url: string): string {
  let path: string
  try {
    path = decodeURIComponent(new URL(url).pathname)
  } catch {
    return '__unnamed__'
  }
  const base = posix.basename(path)
  return base === '' || base === '.' || base === '/' ? '__unnamed__' : base
}

export interface Downloaded {
  readonly url: string
  /** Temp file holding the body (inside the store's tmp dir; the caller removes it). */
  readonly path: string
  readonly digest: Digest
  readonly size: number
  /** Last-Modified in seconds since the epoch, when the server sent a valid one. */
  readonly lastModified?: number
}

/** Fetches `url` into `dir`; `checksum` (`sha256:<hex>`) must match when given. */
export async function download(url: string, dir: string, opts: { checksum?: string; signal?: AbortSignal } = {}): Promise<Downloaded> {
  let res: Response
  try {
    res = await fetch(url, { redirect: 'follow', ...(opts.signal ? { signal: opts.signal } : {}) })
  } catch (e) {
    if (opts.signal?.aborted) throw abortError(opts.signal)
    throw new CopyError(ErrorCodes.ADD_DOWNLOAD_FAILED, `failed to download ${url}: ${(e as Error).message}`, { path: url, url, status: 0 })
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined)
    throw new CopyError(ErrorCodes.ADD_DOWNLOAD_FAILED, `failed to download ${url}: HTTP ${res.status} ${res.statusText}`.trim(), { path: url, url, status: res.status })
  }
  await fsp.mkdir(dir, { recursive: true })
  const file = join(dir, `download-${ownerTag()}-${Math.random().toString(16).slice(2)}`)
  const hash = createHash('sha256')
  let size = 0
  const ws = createWriteStream(file)
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk)
      size += chunk.length
      if (!ws.write(chunk)) await once(ws, 'drain')
    }
    ws.end()
    await once(ws, 'close')
  } catch (e) {
    ws.destroy()
    await fsp.rm(file, { force: true })
    if (opts.signal?.aborted) throw abortError(opts.signal)
    if (e instanceof ImagesmithError) throw e
    throw new CopyError(ErrorCodes.ADD_DOWNLOAD_FAILED, `failed to download ${url}: ${(e as Error).message}`, { path: url, url, status: res.status })
  }
  const digest = `sha256:${hash.digest('hex')}` as Digest
  if (opts.checksum !== undefined && opts.checksum !== digest) {
    await fsp.rm(file, { force: true })
    throw new CopyError(ErrorCodes.ADD_CHECKSUM_MISMATCH, `checksum mismatch for ${url}: expected ${opts.checksum}, got ${digest}`, { path: url, url, expected: opts.checksum, actual: digest })
  }
  const lm = res.headers.get('last-modified')
  const t = lm ? Date.parse(lm) : NaN
  return { url, path: file, digest, size, ...(Number.isFinite(t) ? { lastModified: Math.floor(t / 1000) } : {}) }
}
