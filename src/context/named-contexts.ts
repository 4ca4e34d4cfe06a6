/**
 * Named build contexts as the caller writes them (buildx `--build-context NAME=VALUE`, build option
 * `buildContexts`), read and checked: what each name reads. Replacing stages and references with
 * them is the pipeline's (pipeline/named-contexts.ts).
 */
import { resolve } from 'node:path'
import { ErrorCodes, ImagesmithError, InvalidArgumentError } from '../errors.js'
import { parseReference } from '../reference/reference.js'
import type { StageDef } from '../graph/stage.js'

/**
 * What a name reads: an image (any reference `from()` takes), a directory, or (bake's `target:NAME`)
 * another target's stage, built in the same solve.
 */
export type NamedContext = { readonly kind: 'image'; readonly ref: string } | { readonly kind: 'dir'; readonly path: string } | { readonly kind: 'stage'; readonly stage: StageDef }

const unsupported = (name: string, value: string, what: string) =>
  new ImagesmithError(ErrorCodes.BUILD_CONTEXT_UNSUPPORTED, `build context ${name}=${value}: ${what} is not supported (give a directory, docker-image://REF or oci-layout://DIR[:TAG|@DIGEST])`, { name, value })

/**
 * VALUE by its prefix, first match wins; a value no prefix claims is a directory (relative to the
 * working directory). `target:NAME` is bake's alone: bake() passes that target's builder (`targetContexts`).
 */
const FORMS: readonly { readonly prefix: string; readonly read: (rest: string, name: string, value: string) => NamedContext }[] = [
  {
    prefix: 'docker-image://',
    read: (rest) => {
      parseReference(rest)
      return { kind: 'image', ref: rest }
    },
  },
  {
    // oci-layout://DIR[:TAG|@DIGEST]: imagesmith's `oci:` transport; without either, the layout's image.
    prefix: 'oci-layout://',
    read: (rest, name, value) => {
      if (rest === '') throw invalid(name, value, 'the layout directory is empty')
      return { kind: 'image', ref: `oci:${rest}` }
    },
  },
  ...['https://', 'http://', 'git://', 'git@', 'ssh://'].map((prefix) => ({
    prefix,
    read: (_rest: string, name: string, value: string): NamedContext => {
      throw unsupported(name, value, prefix.startsWith('http') && !/\.git(#|$)/.test(value) ? 'an HTTP URL' : 'a git repository')
    },
  })),
  { prefix: 'target:', read: (_rest, name, value) => { throw unsupported(name, value, "bake's target:") } },
]

function invalid(name: string, value: unknown, why: string): InvalidArgumentError {
  return new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid build context ${name}=${String(value)}: ${why}`, { option: 'buildContexts', name, value })
}

/**
 * The name as BuildKit keys it (`reference.FamiliarString`, `:latest` dropped): `alpine`,
 * `docker.io/library/alpine:latest` and `alpine:latest` are one name; `alpine:3` another.
 */
export function contextName(name: string): string {
  const familiar = parseReference(name).familiar
  return familiar.endsWith(':latest') ? familiar.slice(0, -':latest'.length) : familiar
}

/** One NAME=VALUE, checked now (a missing directory is found when the build reads it). */
export function resolveBuildContext(name: string, value: string): NamedContext {
  if (typeof value !== 'string' || value === '') throw invalid(name, value, 'a directory, docker-image://REF or oci-layout://DIR expected')
  const form = FORMS.find((f) => value.startsWith(f.prefix))
  return form ? form.read(value.slice(form.prefix.length), name, value) : { kind: 'dir', path: resolve(value) }
}

/** The build option as a table by normalised name. */
export function namedContexts(record: Readonly<Record<string, string>> | undefined): ReadonlyMap<string, NamedContext> | undefined {
  if (record === undefined) return undefined
  if (!record || typeof record !== 'object' || Array.isArray(record)) throw invalid('buildContexts', record, 'a record of NAME to VALUE expected')
  const out = new Map<string, NamedContext>()
  for (const [name, value] of Object.entries(record)) {
    let key: string
    try {
      key = contextName(name)
    } catch (e) {
      throw invalid(name, value, `the name is not an image name (${(e as Error).message})`)
    }
    // BuildKit never looks these up: `scratch` is the empty image, `context` the main context.
    if (key === 'scratch' || key === 'context') throw invalid(name, value, `${key} cannot be a named context`)
    out.set(key, resolveBuildContext(name, value))
  }
  return out.size > 0 ? out : undefined
}
