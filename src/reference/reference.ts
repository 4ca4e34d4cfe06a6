import { ErrorCodes, ImagesmithError } from '../errors.js'

/**
 * Image references in Docker's grammar (distribution/reference):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component [ "/" path-component ]*
 *   domain    := host [ ":" port ]     host := domain-name | "[" IPv6 "]"
 *
 * {@link parseReference} normalises as `docker pull` does (`debian` → `docker.io/library/debian:latest`);
 * {@link parseReferenceExact} is the grammar alone, with no default registry or tag.
 */
export interface ImageReference {
  /** `docker.io`, `localhost:5000`, `[::1]:5000` */
  readonly domain: string
  /** The repository inside the registry: `library/debian`, `user/app` */
  readonly path: string
  /** Absent only when the reference names a digest and no tag. */
  readonly tag?: string
  /** `sha256:<hex>`, as written after `@` */
  readonly digest?: string
  /** `docker.io/library/debian` */
  readonly name: string
  /** `docker.io/library/debian:latest`, `docker.io/library/debian@sha256:…` */
  readonly full: string
  /** What `docker images` shows: `debian:latest`, `localhost:5000/app:1` */
  readonly familiar: string
}

/** A reference that names a tag and no digest: what `-t` takes. */
export interface TaggedReference extends ImageReference {
  readonly tag: string
  readonly digest?: undefined
}

/** The grammar's parts, before any normalisation. `domain` is '' when the name has none. */
export interface ReferenceParts {
  readonly domain: string
  readonly path: string
  readonly tag?: string
  readonly digest?: string
}

export const DEFAULT_DOMAIN = 'docker.io'
const LEGACY_DOMAIN = 'index.docker.io'
const OFFICIAL_PREFIX = 'library/'
const DEFAULT_TAG = 'latest'
/** Docker's NameTotalLengthMax: domain and path together. */
export const NAME_MAX = 255

const ALNUM = '[a-z0-9]+'
const SEPARATOR = '(?:[._]|__|-+)'
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]'
const HOST = `(?:${DOMAIN_NAME}|${IPV6})`
const DOMAIN = `${HOST}(?::[0-9]+)?`
const TAG = '[\\w][\\w.-]{0,127}'
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'

const PATH_COMPONENT_RE = new RegExp(`^${PATH_COMPONENT}$`)
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`)
const TAG_RE = new RegExp(`^${TAG}$`)
const DIGEST_RE = new RegExp(`^${DIGEST}$`)
/** The whole grammar in one expression: the parts are diagnosed one by one, then checked against it. */
const REFERENCE_RE = new RegExp(`^(?:(${DOMAIN})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`)
const IDENTIFIER_RE = /^[a-f0-9]{64}$/

/** go-digest's registered algorithms and their hex lengths. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 }

function invalid(ref: string, part: string, why: string): ImagesmithError {
  return new ImagesmithError(ErrorCodes.INVALID_REFERENCE, `invalid image reference ${JSON.stringify(ref)}: ${why}`, { reference: ref, part })
}

/** Splits `name[:tag][@digest]` without judging the parts. */
function split(ref: string): { name: string; tag?: string; digest?: string } {
  let rest = ref
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/') && !rest.slice(colon).includes(']')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
  }
  return { name: rest, tag, digest }
}

function checkDigest(ref: string, digest: string): void {
  if (!DIGEST_RE.test(digest)) throw invalid(ref, 'digest', `digest ${JSON.stringify(digest)} is not algorithm:hex`)
  const [algorithm, hex] = digest.split(':') as [string, string]
  const want = DIGEST_HEX_LENGTH[algorithm]
  if (want === undefined) throw invalid(ref, 'digest', `unsupported digest algorithm ${JSON.stringify(algorithm)} (sha256, sha384 or sha512)`)
  if (hex.length !== want) throw invalid(ref, 'digest', `a ${algorithm} digest has ${want} hex digits, got ${hex.length}`)
  if (!/^[a-f0-9]+$/.test(hex)) throw invalid(ref, 'digest', 'digest hex must be lowercase')
}

function checkPath(ref: string, path: string): void {
  if (path.toLowerCase() !== path) throw invalid(ref, 'repository', `repository name ${JSON.stringify(path)} must be lowercase`)
  for (const c of path.split('/')) {
    if (!PATH_COMPONENT_RE.test(c)) {
      throw invalid(ref, 'repository', c === '' ? 'repository name has an empty path component' : `invalid repository path component ${JSON.stringify(c)}`)
    }
  }
}

/** distribution/reference's Parse: the grammar exactly, no default registry, no default tag. */
export function parseReferenceExact(ref: string): ReferenceParts {
  if (typeof ref !== 'string' || ref === '') throw invalid(String(ref), 'name', 'repository name is empty')
  const { name, tag, digest } = split(ref)
  if (name === '') throw invalid(ref, 'name', 'repository name is empty')
  if (tag !== undefined && !TAG_RE.test(tag)) throw invalid(ref, 'tag', `invalid tag ${JSON.stringify(tag)} (letters, digits, '_', '.', '-'; not starting with '.' or '-'; at most 128)`)
  if (digest !== undefined) checkDigest(ref, digest)
  const m = REFERENCE_RE.exec(ref)
  if (!m) {
    // Say which part is wrong: a domain-looking head, then the path, then uppercase.
    const slash = name.indexOf('/')
    const head = slash >= 0 ? name.slice(0, slash) : ''
    const path = head && !PATH_COMPONENT_RE.test(head) ? name.slice(slash + 1) : name
    if (head && !PATH_COMPONENT_RE.test(head) && !DOMAIN_RE.test(head)) throw invalid(ref, 'domain', `invalid registry host ${JSON.stringify(head)}`)
    if (REFERENCE_RE.test(ref.toLowerCase())) throw invalid(ref, 'repository', `repository name ${JSON.stringify(path)} must be lowercase`)
    checkPath(ref, path)
    throw invalid(ref, 'name', 'invalid reference format')
  }
  const [, domain = '', path = ''] = m
  if (domain.length + (domain ? 1 : 0) + path.length > NAME_MAX) throw invalid(ref, 'name', `repository name is longer than ${NAME_MAX} characters`)
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) }
}

/** Docker's rule for whether the first component of a name is a registry. */
function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf('/')
  let domain = DEFAULT_DOMAIN
  let path = name
  if (slash >= 0) {
    const head = name.slice(0, slash)
    if (head === 'localhost' || /[.:]/.test(head) || head.toLowerCase() !== head) {
      domain = head
      path = name.slice(slash + 1)
    } else if (head === LEGACY_DOMAIN) path = name.slice(slash + 1)
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path
  return { domain, path }
}

/**
 * distribution/reference's ParseNormalizedNamed plus the default tag: `debian` →
 * `docker.io/library/debian:latest`; `name@sha256:…` keeps no tag; `name:tag@sha256:…` keeps both.
 */
export function parseReference(ref: string): ImageReference {
  if (typeof ref !== 'string' || ref === '') throw invalid(String(ref), 'name', 'repository name is empty')
  if (IDENTIFIER_RE.test(ref)) throw invalid(ref, 'name', 'a 64-character hex string is an image ID, not a repository name')
  const { name, tag, digest } = split(ref)
  const { domain, path } = splitDomain(name)
  if (path.toLowerCase() !== path) throw invalid(ref, 'repository', `repository name ${JSON.stringify(path)} must be lowercase`)
  const parts = parseReferenceExact(`${domain}/${path}${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`)
  return build(parts.domain, parts.path, parts.tag ?? (parts.digest ? undefined : DEFAULT_TAG), parts.digest)
}

function build(domain: string, path: string, tag: string | undefined, digest: string | undefined): ImageReference {
  const suffix = `${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`
  const name = `${domain}/${path}`
  let familiarName = name
  if (domain === DEFAULT_DOMAIN) {
    const rest = path.startsWith(OFFICIAL_PREFIX) ? path.slice(OFFICIAL_PREFIX.length) : path
    familiarName = rest.includes('/') ? path : rest
  }
  return Object.freeze({ domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}), name, full: name + suffix, familiar: familiarName + suffix })
}

/** Parses a tag as `docker build -t` takes it: a digest (`@sha256:…`) is not a tag and is refused. */
export function parseImageName(name: string): TaggedReference {
  if (typeof name === 'string' && name.includes('@')) {
    throw new ImagesmithError(ErrorCodes.INVALID_REFERENCE, `invalid image name ${JSON.stringify(name)}: a tag cannot contain a digest`, { reference: name, part: 'digest' })
  }
  return parseReference(name) as TaggedReference
}
