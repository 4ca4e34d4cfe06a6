import { ErrorCodes, ImagesmithError } from '../errors.js'

/** A parsed image name, normalised as Docker does (`app` → `docker.io/library/app:latest`). */
export interface ImageReference {
  readonly domain: string
  readonly path: string
  readonly tag: string
  /** `docker.io/library/app:1` */
  readonly full: string
  /** What `docker images` shows: `app:1`, `localhost:5000/app:1` */
  readonly familiar: string
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[\w][\w.-]{0,127}$/
const DOMAIN = /^(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::\d+)?$/

/** Parses a tag like `docker build -t` takes it. A digest (`@sha256:…`) is not a tag and is refused. */
export function parseImageName(name: string): ImageReference {
  const bad = (why: string) => new ImagesmithError(ErrorCodes.INVALID_REFERENCE, `invalid image name ${JSON.stringify(name)}: ${why}`, { reference: name })
  if (typeof name !== 'string' || name.length === 0 || name.length > 255) throw bad('empty or too long')
  if (name.includes('@')) throw bad('a tag cannot contain a digest')
  let rest = name
  let tag = 'latest'
  const slash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > slash) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw bad(`invalid tag ${JSON.stringify(tag)}`)
  }
  let domain = 'docker.io'
  const first = rest.indexOf('/')
  if (first > 0) {
    const head = rest.slice(0, first)
    if (head.includes('.') || head.includes(':') || head === 'localhost') {
      if (!DOMAIN.test(head)) throw bad(`invalid registry ${JSON.stringify(head)}`)
      domain = head
      rest = rest.slice(first + 1)
    }
  }
  if (domain === 'index.docker.io') domain = 'docker.io'
  const parts = rest.split('/')
  if (parts.some((p) => !COMPONENT.test(p))) throw bad('repository name must be lowercase letters, digits and separators')
  let path = rest
  if (domain === 'docker.io' && parts.length === 1) path = `library/${rest}`
  const full = `${domain}/${path}:${tag}`
  let familiar = `${domain}/${path}:${tag}`
  if (domain === 'docker.io') familiar = `${path.startsWith('library/') ? path.slice(8) : path}:${tag}`
  return { domain, path, tag, full, familiar }
}
