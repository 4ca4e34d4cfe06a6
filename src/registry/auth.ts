import { ErrorCodes, ImagesmithError } from '../errors.js'
import { parseChallenges, type Challenge } from './challenge.js'
import type { CredentialStore } from './credentials.js'
import type { Endpoint } from './endpoints.js'
import type { RegistryCredentials } from './options.js'
import { readBody, safeUrl, type HttpResponse, type Transport } from './transport.js'

/** `repository:library/busybox:pull` (or `pull,push`): what a bearer token grants. */
export function repositoryScope(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${actions.join(',')}`
}

interface Token {
  readonly value: string
  /** ms since the epoch after which the token is not reused */
  readonly expires: number
}

/** Tokens are not reused in their last seconds: a request may take that long to reach the registry. */
const EXPIRY_MARGIN_MS = 5_000
/** The distribution spec's default lifetime when the token server states none. */
const DEFAULT_TOKEN_SECONDS = 60

/**
 * Authorization for registry requests. The first request to a host goes out bare; its 401 names
 * the scheme (`WWW-Authenticate`), which is remembered per host so later requests carry the header
 * at once. Bearer tokens are fetched from the challenge's realm (anonymously, with basic
 * credentials, or with an identity token as OAuth2 refresh token) and reused per registry and
 * scope until they expire. Secrets stay in this object: {@link redact} scrubs them from any text.
 */
export class Authenticator {
  readonly #transport: Transport
  readonly #creds: CredentialStore
  readonly #challenges = new Map<string, Challenge>()
  readonly #tokens = new Map<string, Promise<Token>>()
  readonly #secrets = new Set<string>()
  #tokenRequests = 0

  constructor(transport: Transport, creds: CredentialStore) {
    this.#transport = transport
    this.#creds = creds
  }

  /** Token requests sent so far (tests count them to check reuse). */
  get tokenRequests(): number {
    return this.#tokenRequests
  }

  /** The Authorization header for `scopes` at `ep`, from what the host challenged with before (none yet: undefined). */
  async header(ep: Endpoint, scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const ch = this.#challenges.get(ep.host)
    if (!ch) return undefined
    const creds = await this.#credentials(ep)
    if (ch.scheme === 'basic') {
      if (!creds || !('password' in creds)) return undefined
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
    }
    const token = await this.#token(ep, ch, scopes, creds, signal)
    return `Bearer ${token.value}`
  }

  /**
   * Takes a 401's challenge. Returns true when a retry may succeed (a new scheme, or a cached token
   * that is now dropped); false when the same header was already refused.
   */
  learn(ep: Endpoint, res: HttpResponse, scopes: readonly string[], sent: string | undefined): boolean {
    const ch = parseChallenges(res.headers['www-authenticate'])[0]
    if (!ch) return false
    const before = this.#challenges.get(ep.host)
    this.#challenges.set(ep.host, ch)
    if (!sent) return true
    if (!before || before.scheme !== ch.scheme || before.params.realm !== ch.params.realm) return true
    if (ch.scheme === 'bearer') {
      // A token the registry refused (expired early, revoked): fetch one fresh token, once.
      const key = tokenKey(ep, ch, scopes)
      if (this.#tokens.has(key)) {
        this.#tokens.delete(key)
        return true
      }
    }
    return false
  }

  /** Replaces every secret this object has seen with `***`. */
  redact(text: string): string {
    let out = text
    for (const s of this.#secrets) if (s.length >= 4) out = out.split(s).join('***')
    return out
  }

  async #credentials(ep: Endpoint): Promise<RegistryCredentials | undefined> {
    const creds = await this.#creds.get(ep.registry)
    if (creds) {
      if ('password' in creds) {
        this.#secrets.add(creds.password)
        this.#secrets.add(Buffer.from(`${creds.username}:${creds.password}`).toString('base64'))
      } else this.#secrets.add(creds.identityToken)
    }
    return creds
  }

  #token(ep: Endpoint, ch: Challenge, scopes: readonly string[], creds: RegistryCredentials | undefined, signal?: AbortSignal): Promise<Token> {
    const key = tokenKey(ep, ch, scopes)
    const cached = this.#tokens.get(key)
    if (cached) {
      return cached.then((t) => {
        if (t.expires > Date.now()) return t
        if (this.#tokens.get(key) === cached) this.#tokens.delete(key)
        return this.#token(ep, ch, scopes, creds, signal)
      })
    }
    const p = this.#fetchToken(ep, ch, scopes, creds, signal)
    this.#tokens.set(key, p)
    p.catch(() => {
      if (this.#tokens.get(key) === p) this.#tokens.delete(key)
    })
    return p
  }

  async #fetchToken(ep: Endpoint, ch: Challenge, scopes: readonly string[], creds: RegistryCredentials | undefined, signal?: AbortSignal): Promise<Token> {
    const realm = ch.params.realm
    if (!realm) throw new ImagesmithError(ErrorCodes.REGISTRY_ERROR, `registry ${ep.host} asked for a bearer token without naming a realm`, { registry: ep.host })
    const url = new URL(realm)
    const service = ch.params.service
    this.#tokenRequests++
    let res: HttpResponse
    if (creds && 'identityToken' in creds) {
      // An identity token is an OAuth2 refresh token (docker login with an identity provider).
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'imagesmith', ...(service ? { service } : {}), scope: scopes.join(' ') })
      res = await this.#transport.send({ method: 'POST', url: url.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()), signal })
    } else {
      if (service) url.searchParams.set('service', service)
      for (const s of scopes) url.searchParams.append('scope', s)
      const headers: Record<string, string> = creds ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` } : {}
      if (creds) url.searchParams.set('account', creds.username)
      res = await this.#transport.send({ method: 'GET', url: url.toString(), headers, signal })
    }
    const body = await readBody(res, 1 << 20)
    if (res.status === 401 || res.status === 403) {
      throw new ImagesmithError(ErrorCodes.UNAUTHORIZED, `registry ${ep.host}: the token server ${url.host} refused ${creds ? 'the credentials' : 'anonymous access'} (${res.status}) for ${scopes.join(' ')}`, {
        registry: ep.host,
        status: res.status,
        scope: scopes.join(' '),
        realm: safeUrl(realm),
      })
    }
    if (res.status !== 200) {
      throw new ImagesmithError(ErrorCodes.REGISTRY_ERROR, `registry ${ep.host}: the token server ${url.host} answered ${res.status}`, { registry: ep.host, status: res.status, realm: safeUrl(realm) })
    }
    let json: { token?: string; access_token?: string; expires_in?: number; issued_at?: string }
    try {
      json = JSON.parse(body.toString('utf8')) as typeof json
    } catch {
      throw new ImagesmithError(ErrorCodes.REGISTRY_ERROR, `registry ${ep.host}: the token server ${url.host} sent no JSON`, { registry: ep.host, realm: safeUrl(realm) })
    }
    const value = json.token ?? json.access_token
    if (!value) throw new ImagesmithError(ErrorCodes.REGISTRY_ERROR, `registry ${ep.host}: the token server ${url.host} sent no token`, { registry: ep.host, realm: safeUrl(realm) })
    this.#secrets.add(value)
    const issued = json.issued_at ? Date.parse(json.issued_at) : NaN
    const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now()
    const seconds = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : DEFAULT_TOKEN_SECONDS
    return { value, expires: start + seconds * 1000 - EXPIRY_MARGIN_MS }
  }
}

function tokenKey(ep: Endpoint, ch: Challenge, scopes: readonly string[]): string {
  return [ep.host, ch.params.realm ?? '', ch.params.service ?? '', ...[...scopes].sort()].join('\n')
}
