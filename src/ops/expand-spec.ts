/**
 * Solve-time `$VAR` expansion (the decision is written down in graph/expansion.ts): a spec whose
 * words are marked becomes a literal spec, expanded against the stage's environment, before the
 * executor does anything else. The marker is dropped, so history, config and cache keys hold the
 * expanded values and a marked spec shares cache entries with the literal spec it expands to.
 *
 * Every word of one solve draws on one {@link ExpansionBudget} (shell/limits.ts): a Dockerfile of many
 * `LABEL l=${big}${big}` lines stops at the budget instead of growing the config without bound.
 */
import { ErrorCodes, InvalidArgumentError } from '../errors.js'
import type { Expandable } from '../graph/expansion.js'
import type { ArgDecl, ConfigSpec } from '../graph/nodes/config-node.js'
import type { CopySpec } from '../graph/nodes/copy-node.js'
import type { MountSpec, RunSpec } from '../graph/nodes/run-node.js'
import { normalizePorts, parseChmod, validateSignal } from '../graph/values.js'
import { processWord, processWords } from '../shell/expand.js'
import { ExpansionBudget } from '../shell/limits.js'
import type { ExecContext, ImageState } from '../solver/types.js'
import { envMap } from './state.js'

/**
 * The variables a word sees: the image's ENV (base image's included), then the ARGs in scope that
 * have a value and that no ENV of the same name overrides (as RUN sees them, see run.ts planStep).
 */
export function stageEnv(state: ImageState): Map<string, string> {
  const env = envMap(state.config.config.Env)
  for (const a of state.args) if (a.value !== undefined && !env.has(a.name)) env.set(a.name, a.value)
  return env
}

/** The solve's expansion budget (the solver hands every executor the same context object). */
const budgets = new WeakMap<ExecContext, ExpansionBudget>()
export function solveBudget(ctx: ExecContext): ExpansionBudget {
  let b = budgets.get(ctx)
  if (!b) budgets.set(ctx, (b = new ExpansionBudget()))
  return b
}

interface Expander {
  word(w: string): string
  words(w: string): readonly string[]
  /** Heredoc content: only `$` is processed, quotes stay, the escape is always `\\` (BuildKit's ExpandRaw). */
  raw(w: string): string
}

function expander(spec: Expandable, state: ImageState, budget: ExpansionBudget): Expander {
  const env = stageEnv(state)
  const options = spec.escapeToken ? { escapeToken: spec.escapeToken, budget } : { budget }
  return {
    word: (w) => processWord(w, env, options).value,
    words: (w) => processWords(w, env, options).words,
    raw: (w) => processWord(w, env, { skipProcessQuotes: true, budget }).value,
  }
}

function literal<T extends Expandable>(spec: T): Omit<T, 'expand' | 'escapeToken'> {
  const { expand: _e, escapeToken: _t, ...rest } = spec
  return rest
}

/** COPY/ADD: sources, dest, `--chown`, `--chmod`, `--exclude`. */
export function literalCopySpec<S extends CopySpec>(spec: S, state: ImageState, budget: ExpansionBudget = new ExpansionBudget()): S {
  if (!spec.expand) return spec
  const x = expander(spec, state, budget)
  const chmod = spec.chmod === undefined ? undefined : parseChmod(x.word(spec.chmod)).toString(8)
  const chown = spec.chown === undefined ? undefined : x.word(spec.chown)
  const out = {
    ...literal(spec),
    sources: spec.sources.map(x.word),
    dest: x.word(spec.dest),
    exclude: spec.exclude.map(x.word),
    ...(spec.inline ? { inline: spec.inline.map((f) => (f.expand ? { name: f.name, data: x.raw(f.data) } : { name: f.name, data: f.data })) } : {}),
    ...(chown !== undefined && chown !== '' ? { chown } : { chown: undefined }),
    ...(chmod !== undefined ? { chmod } : {}),
  }
  return out as unknown as S
}

/** RUN: the mounts' target, source, id and env words (`from` was resolved when the Dockerfile was read). */
export function literalRunSpec(spec: RunSpec, state: ImageState, budget: ExpansionBudget = new ExpansionBudget()): RunSpec {
  if (!spec.expand) return spec
  const x = expander(spec, state, budget)
  const mounts = spec.mounts.map((m): MountSpec => {
    switch (m.type) {
      case 'cache':
        return { ...m, target: x.word(m.target), id: x.word(m.id) }
      case 'secret':
        return { ...m, id: x.word(m.id), target: x.word(m.target), ...(m.env !== undefined ? { env: x.word(m.env) } : {}) }
      case 'bind':
        return { ...m, target: x.word(m.target), source: x.word(m.source) }
      case 'tmpfs':
        return { ...m, target: x.word(m.target) }
      case 'ssh':
        return { ...m, id: x.word(m.id), target: x.word(m.target) }
    }
  })
  return { ...literal(spec), mounts }
}

/** ARG: a marked default; a `--build-arg` value (unmarked) stays as given. */
function literalArg(a: ArgDecl, x: ReturnType<typeof expander>): ArgDecl {
  if (!a.expand || a.value === undefined) return a.value === undefined ? { name: a.name } : { name: a.name, value: a.value }
  return { name: a.name, value: x.word(a.value) }
}

/** Config ops: ENV and LABEL (keys and values), ARG defaults, WORKDIR, USER, VOLUME, STOPSIGNAL, EXPOSE. */
export function literalConfigSpec(spec: ConfigSpec, state: ImageState, budget: ExpansionBudget = new ExpansionBudget()): ConfigSpec {
  if (spec.op === 'arg') {
    if (!spec.args.some((a) => a.expand)) return spec
    const x = expander(spec.args.find((a) => a.expand)!, state, budget)
    // Every default sees the env as it was before the instruction, as BuildKit expands a whole command at once.
    return { op: 'arg', args: spec.args.map((a) => literalArg(a, x)) }
  }
  if (!('expand' in spec) || !spec.expand) return spec
  const x = expander(spec, state, budget)
  switch (spec.op) {
    case 'env': {
      const vars = spec.vars.map(([k, v]) => [x.word(k), x.word(v)] as const)
      for (const [k] of vars) if (k === '') throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'ENV names must not be empty', { vars: spec.vars })
      return { op: 'env', vars }
    }
    case 'label':
      return { op: 'label', labels: spec.labels.map(([k, v]) => [x.word(k), x.word(v)] as const) }
    case 'workdir':
      return { op: 'workdir', path: nonEmpty(x.word(spec.path), 'WORKDIR', spec.path) }
    case 'user':
      return { op: 'user', user: nonEmpty(x.word(spec.user), 'USER', spec.user) }
    case 'volume':
      return { op: 'volume', paths: spec.paths.map((p) => nonEmpty(x.word(p), 'VOLUME', p)) }
    case 'stopsignal':
      return { op: 'stopsignal', signal: validateSignal(x.word(spec.signal)) }
    case 'expose':
      // BuildKit's dispatchExpose: each word is expanded and split (`EXPOSE $PORTS`), then parsed.
      return { op: 'expose', ports: [...new Set(spec.ports.flatMap((p) => x.words(p)).flatMap((p) => normalizePorts(p)))] }
  }
}

function nonEmpty(value: string, what: string, written: string): string {
  if (value === '') throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${what} ${written} expands to an empty value`, { word: written })
  return value
}
