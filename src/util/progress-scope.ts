/**
 * Work a step waits on that is not the step's own (reading or unpacking its base image's layers)
 * shows as a progress line of its own, and its time is not charged to the step: a WORKDIR that
 * first scans a 100 MB base no longer reads "2.5 s". The step's scope travels with its async work
 * (AsyncLocalStorage), so the deep code that does such work (snapshot unpack, base layer scans)
 * needs no progress plumbing: it calls {@link subStep}, a no-op outside a step.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { createHash } from 'node:crypto'

/** What a step's scope reports through: the solver's progress events, with `parent` set. */
export type SubStepEvent =
  | { readonly type: 'start'; readonly vertex: string; readonly description: string; readonly parent: string; readonly time: number }
  | { readonly type: 'done'; readonly vertex: string; readonly description: string; readonly parent: string; readonly ms: number; readonly time: number }

interface StepScope {
  readonly vertex: string
  readonly emit: (e: SubStepEvent) => void
  /** Milliseconds this step spent waiting in sub-steps (taken off its own time). */
  subMs: number
}

const scopes = new AsyncLocalStorage<StepScope>()

/** Runs a step's work with its scope; returns the work's result and the time spent in sub-steps. */
export async function inStepScope<T>(vertex: string, emit: (e: SubStepEvent) => void, work: () => Promise<T>): Promise<{ result: T; subMs: number }> {
  const scope: StepScope = { vertex, emit, subMs: 0 }
  const result = await scopes.run(scope, work)
  return { result, subMs: scope.subMs }
}

/**
 * `work` as a line of its own under the current step (`description`, e.g. `[internal] unpack
 * sha256:ab12…`); `key` names the work so the line has a stable id. Outside a step, just `work()`.
 */
export async function subStep<T>(key: string, description: string, work: () => Promise<T>): Promise<T> {
  const scope = scopes.getStore()
  if (!scope) return work()
  const vertex = `sha256:${createHash('sha256').update(`sub\0${scope.vertex}\0${key}`).digest('hex')}`
  const started = Date.now()
  scope.emit({ type: 'start', vertex, description, parent: scope.vertex, time: started })
  // Nested sub-steps run outside this one's scope: their time is this line's, not the step's twice.
  try {
    return await scopes.exit(work)
  } finally {
    const ms = Date.now() - started
    scope.subMs += ms
    scope.emit({ type: 'done', vertex, description, parent: scope.vertex, ms, time: Date.now() })
  }
}
