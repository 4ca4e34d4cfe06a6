/**
 * Named build contexts (buildx `--build-context NAME=VALUE`, build option `buildContexts`): a name
 * that FROM, COPY --from or RUN --mount=from= uses reads the context instead, and a stage of that
 * name is replaced by it (BuildKit's dockerfile2llb: `NamedContext` before the stage or the image).
 */
import { resolve } from 'node:path'
import { image } from '../builder/image-builder.js'
import { ErrorCodes, ImagesmithError, InvalidArgumentError } from '../errors.js'
import type { StageDef, Step, StepInput } from '../graph/stage.js'
import { parseReference } from '../reference/reference.js'
import { deepFreeze } from '../util/freeze.js'

/** What a name reads: an image (any reference `from()` takes), or a directory. */
export type NamedContext = { readonly kind: 'image'; readonly ref: string } | { readonly kind: 'dir'; readonly path: string }

const unsupported = (name: string, value: string, what: string) =>
  new ImagesmithError(ErrorCodes.BUILD_CONTEXT_UNSUPPORTED, `build context ${name}=${value}: ${what} is not supported (give a directory, docker-image://REF or oci-layout://DIR[:TAG|@DIGEST])`, { name, value })

/**
 * VALUE by its prefix, first match wins; a value no prefix claims is a directory (relative to the
 * working directory). The later monorepo bake adds its `target:` line here.
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

/**
 * The stage with every use of a named context replaced: a base or input reference of that name,
 * and a stage whose name (`stageNames`: a Dockerfile's `AS`, a script's record key) is that name. A
 * directory read by COPY --from is read in place (`copy()`'s `context`); as a FROM or a mount
 * source it is a stage made of its files. `replaced` maps each rewritten stage to its new one.
 */
export function applyNamedContexts(
  root: StageDef,
  contexts: ReadonlyMap<string, NamedContext>,
  stageNames: ReadonlyMap<StageDef, string> = new Map(),
): { stage: StageDef; replaced: ReadonlyMap<StageDef, StageDef> } {
  const memo = new Map<StageDef, StageDef>()
  const lookup = (name: string | undefined): NamedContext | undefined => {
    if (name === undefined || name === 'scratch' || /^\d+$/.test(name)) return undefined
    try {
      return contexts.get(contextName(name))
    } catch {
      return undefined // not an image name (`oci:…`, `local:…`): never a named context
    }
  }
  const contextStage = (c: NamedContext): StageDef =>
    c.kind === 'image' ? image().from(c.ref).toStage() : image().copy('.', '/', { context: c.path }).toStage()
  const named = (dep: StepInput): NamedContext | undefined => ('ref' in dep ? lookup(dep.ref) : lookup(stageNames.get(dep.stage)))
  const input = (dep: StepInput): StepInput => {
    const c = named(dep)
    if (c) return c.kind === 'image' ? { ref: c.ref } : { stage: contextStage(c) }
    return 'ref' in dep ? dep : { stage: walk(dep.stage) }
  }
  const step = (s: Step): Step => {
    const c = s.kind === 'copy' && s.deps.length === 1 ? named(s.deps[0]!) : undefined
    if (c?.kind === 'dir') return { ...s, spec: { ...(s.spec as Step<'copy'>['spec']), fromInput: false, context: c.path }, deps: [] }
    const deps = s.deps.map(input)
    return deps.every((d, i) => d === s.deps[i]) ? s : { ...s, deps }
  }
  const walk = (s: StageDef): StageDef => {
    const done = memo.get(s)
    if (done) return done
    const self = lookup(stageNames.get(s))
    let out: StageDef
    if (self) out = contextStage(self)
    else {
      const base = 'ref' in s.base ? input(s.base) : { stage: walk(s.base.stage) }
      const steps = s.steps.map(step)
      const same = (('ref' in s.base && 'ref' in base && base.ref === s.base.ref) || ('stage' in s.base && 'stage' in base && base.stage === s.base.stage)) && steps.every((x, i) => x === s.steps[i])
      out = same ? s : deepFreeze({ base, steps })
    }
    memo.set(s, out)
    return out
  }
  const stage = walk(root)
  return { stage, replaced: new Map([...memo].filter(([a, b]) => a !== b)) }
}
