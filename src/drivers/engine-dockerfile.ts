/**
 * The Dockerfile an engine builds: the graph printed as a multi-stage Dockerfile, after three
 * rewrites that only the hand-off needs. Context sources are read from the context's directory in
 * the uploaded tar (a sessionless `/build` does not apply `.dockerignore` to its tar, so the
 * Dockerfile beside the context would land in `COPY . /app`); local bases are read by the names
 * they were loaded under; and what the tar cannot carry (secret and ssh mounts, a second context)
 * is refused, naming the step, before anything is sent.
 */
import { posix } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { StageDef, Step, StepInput } from '../graph/stage.js'
import type { CopySpec } from '../graph/nodes/copy-node.js'
import type { MountSpec, RunSpec } from '../graph/nodes/run-node.js'
import { collectStages } from '../dockerfile/print-stages.js'
import { toDockerfile } from '../dockerfile/print.js'
import { dockerfileText } from '../graph/instruction-text.js'

/** The directory of the uploaded tar that holds the context; the Dockerfile sits beside it. */
export const ENGINE_CONTEXT_DIR = 'context'
/** The Dockerfile's name in the tar: nothing of the context can take it, the context is one level down. */
export const ENGINE_DOCKERFILE = 'Dockerfile'

/** Local image references (`oci-archive:`, `oci:`, `docker-archive:`, `local:`): loaded into the engine first. */
export function isLocalRef(ref: string): boolean {
  return /^(?:oci-archive|oci|docker-archive|local):/.test(ref) && !/^local:\d+(?:\/|$)/.test(ref)
}

/** Every local reference a target's stages read (FROM, COPY --from, RUN --mount from=), each once. */
export function localRefsOf(target: StageDef): string[] {
  const refs = new Set<string>()
  for (const { def } of collectStages(target).order) {
    if ('ref' in def.base && isLocalRef(def.base.ref)) refs.add(def.base.ref)
    for (const step of def.steps) for (const d of step.deps) if ('ref' in d && isLocalRef(d.ref)) refs.add(d.ref)
  }
  return [...refs]
}

/** ENGINE_FEATURE_UNSUPPORTED for the first step a sessionless build cannot carry. */
export function refuseUnsupported(target: StageDef): void {
  for (const { def } of collectStages(target).order) {
    for (const step of def.steps) {
      const refuse = (feature: string, why: string): never => {
        const text = describe(step)
        throw new ImagesmithError(
          ErrorCodes.ENGINE_FEATURE_UNSUPPORTED,
          `${text}: ${feature} cannot be handed to an engine's /build (${why}); build it locally (without --engine)`,
          { step: text, feature },
        )
      }
      if (step.kind === 'run') {
        for (const m of (step.spec as RunSpec).mounts) {
          if (m.type === 'secret') refuse(`secret mount (id=${m.id})`, 'a secret travels only through a BuildKit session, which this hand-off does not open')
          if (m.type === 'ssh') refuse(`ssh mount (id=${m.id})`, 'an ssh agent is forwarded only through a BuildKit session, which this hand-off does not open')
        }
      }
      if ((step.kind === 'copy' || step.kind === 'add') && (step.spec as CopySpec).context !== undefined) {
        refuse(`named context ${(step.spec as CopySpec).context}`, 'the engine receives one context tar')
      }
    }
  }
}

/**
 * The Dockerfile text for the engine. `loaded` maps each local reference to the name it was loaded
 * under in the engine. Call {@link refuseUnsupported} first.
 */
export function engineDockerfile(target: StageDef, loaded: ReadonlyMap<string, string>): string {
  const { order, byDef } = collectStages(target)
  const mapped = new Map<StageDef, StageDef>()
  const input = (d: StepInput): StepInput => ('ref' in d ? { ref: loaded.get(d.ref) ?? d.ref } : { stage: mapped.get(byDef.get(d.stage)!.def)! })
  // Dependencies come first in `order`: every stage a stage reads is mapped before it.
  for (const { def } of order) {
    const base = 'ref' in def.base ? { ref: loaded.get(def.base.ref) ?? def.base.ref } : { stage: mapped.get(byDef.get(def.base.stage)!.def)! }
    const steps = def.steps.map((s) => ({ ...s, deps: s.deps.map(input), spec: contextSpec(s) }) as Step)
    mapped.set(def, { ...def, base, steps })
  }
  return toDockerfile(mapped.get(byDef.get(target)!.def)!)
}

function contextSpec(step: Step): unknown {
  if (step.kind === 'copy' || step.kind === 'add') {
    const spec = step.spec as CopySpec
    if (spec.fromInput) return spec
    return { ...spec, sources: spec.sources.map((s) => (step.kind === 'add' && isRemote(s) ? s : inContext(s, spec.expand !== undefined, spec.parents === true))) }
  }
  if (step.kind === 'run') {
    const spec = step.spec as RunSpec
    if (!spec.mounts.some((m) => m.type === 'bind' && m.fromInput === undefined)) return spec
    const mounts = spec.mounts.map((m): MountSpec => (m.type === 'bind' && m.fromInput === undefined ? { ...m, source: inContext(m.source, false, false) } : m))
    return { ...spec, mounts }
  }
  return step.spec
}

/** ADD's URL and git sources are fetched by the engine, not read from the context. */
function isRemote(src: string): boolean {
  return /^[a-z][a-z0-9+.-]{0,20}:\/\//i.test(src) || src.startsWith('git@')
}

/**
 * A context path as a path under the context directory. Cleaned first (BuildKit reads `../x` as
 * `x`), so it cannot leave the directory; a word to be expanded is prefixed as it is. `--parents`
 * keeps paths below a `/./` pivot, which the prefix then ends in.
 */
function inContext(src: string, expand: boolean, parents: boolean): string {
  if (expand) return parents && !src.includes('/./') ? `${ENGINE_CONTEXT_DIR}/./${src}` : `${ENGINE_CONTEXT_DIR}/${src}`
  const clean = posix.normalize(`/${src}`).slice(1)
  const trail = src.endsWith('/') && clean !== '' && !clean.endsWith('/') ? '/' : ''
  if (parents && !src.includes('/./')) return `${ENGINE_CONTEXT_DIR}/./${clean}${trail}`
  return clean === '' ? ENGINE_CONTEXT_DIR : `${ENGINE_CONTEXT_DIR}/${clean}${trail}`
}

function describe(step: Step): string {
  return step.meta.description || dockerfileText(step)
}
