import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Endpoint } from './endpoints.js'
import { readBody, safeUrl, type HttpResponse } from './transport.js'

/** What a request was for, so its error can say so. */
export interface RequestSubject {
  readonly repository: string
  /** A tag or digest (manifests), a digest (blobs). */
  readonly reference?: string
  readonly what: 'manifest' | 'blob' | 'upload' | 'tags' | 'catalog' | 'ping'
}

/**
 * Turns a failed registry response into a typed error, with the registry's own error codes
 * (`{"errors":[{"code":"MANIFEST_UNKNOWN",…}]}`) when it sent them. `redact` scrubs secrets from
 * anything the registry echoed.
 */
export async function responseError(ep: Endpoint, res: HttpResponse, subject: RequestSubject, redact: (s: string) => string = (s) => s): Promise<ImagesmithError> {
  let body = ''
  try {
    body = res.body.readableEnded ? '' : (await readBody(res, 64 << 10)).toString('utf8')
  } catch {
    // the status is enough
  }
  let codes: string[] = []
  let messages: string[] = []
  try {
    const json = JSON.parse(body) as { errors?: { code?: string; message?: string }[] }
    codes = (json.errors ?? []).map((e) => String(e.code ?? ''))
    messages = (json.errors ?? []).map((e) => String(e.message ?? '')).filter(Boolean)
  } catch {
    // not the distribution error format
  }
  const target = `${ep.host}/${subject.repository}${subject.reference ? (subject.reference.includes(':') ? `@${subject.reference}` : `:${subject.reference}`) : ''}`
  const said = messages.length ? `: ${redact(messages.join('; '))}` : ''
  const details = { registry: ep.host, repository: subject.repository, ...(subject.reference ? { reference: subject.reference } : {}), status: res.status, url: safeUrl(res.url), ...(codes.length ? { registryCodes: codes } : {}) }
  if (res.status === 401 || res.status === 403) {
    return new ImagesmithError(ErrorCodes.UNAUTHORIZED, `registry ${ep.host} refused access to ${subject.repository} (${res.status})${said}`, details)
  }
  if (res.status === 404 || codes.includes('MANIFEST_UNKNOWN') || codes.includes('NAME_UNKNOWN')) {
    if (subject.what === 'blob' || codes.includes('BLOB_UNKNOWN')) {
      return new ImagesmithError(ErrorCodes.BLOB_UNKNOWN, `blob ${subject.reference ?? ''} not found in ${ep.host}/${subject.repository}${said}`, details)
    }
    if (subject.what === 'manifest') return new ImagesmithError(ErrorCodes.MANIFEST_UNKNOWN, `manifest unknown: ${target} not found${said}`, details)
  }
  return new ImagesmithError(ErrorCodes.REGISTRY_ERROR, `registry ${ep.host} answered ${res.status} for ${subject.what} ${target}${said}`, details)
}
