import { posix } from 'node:path'
import type { ConfigSpec } from '../graph/nodes/config-node.js'
import type { ContainerConfig } from '../oci/types.js'
import type { ExecContext, Executor, ImageState } from '../solver/types.js'
import { DEFAULT_SHELL, historyText } from '../graph/instruction-text.js'
import { literalConfigSpec, solveBudget } from './expand-spec.js'
import { envMap, withConfig } from './state.js'
import { applyWorkdir } from './workdir.js'
import { execPlan } from '../cache/layer-cache.js'

export { DEFAULT_SHELL }

export function shellOf(config: ContainerConfig): readonly string[] {
  return config.Shell && config.Shell.length > 0 ? config.Shell : DEFAULT_SHELL
}

/** Relative WORKDIRs resolve against the previous one, as in Dockerfiles. */
function resolveWorkdir(state: ImageState, path: string): string {
  return posix.resolve(state.config.config.WorkingDir || '/', path)
}

type Handler<O extends ConfigSpec['op']> = (spec: Extract<ConfigSpec, { op: O }>, state: ImageState, ctx: ExecContext) => ImageState

/** Ops that only change the config. WORKDIR is not one: it also makes its directory (workdir.ts). */
type PureOp = Exclude<ConfigSpec['op'], 'workdir'>

/** One handler per metadata op; history strings come from graph/instruction-text. */
const handlers: { readonly [O in PureOp]: Handler<O> } = {
  env: (spec, state, ctx) =>
    withConfig(state, ctx, historyText('config', spec), (c) => {
      const env = envMap(c.Env)
      for (const [k, v] of spec.vars) env.set(k, v)
      return { ...c, Env: [...env].map(([k, v]) => `${k}=${v}`) }
    }),
  arg: (spec, state, ctx) => {
    const args = state.args.filter((a) => !spec.args.some((n) => n.name === a.name))
    for (const a of spec.args) args.push(a.value === undefined ? { name: a.name } : { name: a.name, value: a.value })
    return withConfig(state, ctx, historyText('config', spec), (c) => c, { args })
  },
  user: (spec, state, ctx) => withConfig(state, ctx, historyText('config', spec), (c) => ({ ...c, User: spec.user })),
  expose: (spec, state, ctx) =>
    withConfig(state, ctx, historyText('config', spec), (c) => {
      const ports: Record<string, Record<string, never>> = { ...(c.ExposedPorts ?? {}) }
      for (const p of spec.ports) ports[p] = {}
      return { ...c, ExposedPorts: ports }
    }),
  volume: (spec, state, ctx) =>
    withConfig(state, ctx, historyText('config', spec), (c) => {
      const vols: Record<string, Record<string, never>> = { ...(c.Volumes ?? {}) }
      for (const p of spec.paths) vols[p] = {}
      return { ...c, Volumes: vols }
    }),
  label: (spec, state, ctx) =>
    withConfig(state, ctx, historyText('config', spec), (c) => {
      const labels: Record<string, string> = { ...(c.Labels ?? {}) }
      for (const [k, v] of spec.labels) labels[k] = v
      return { ...c, Labels: labels }
    }),
  cmd: (spec, state, ctx) => {
    const args = spec.shellForm ? [...shellOf(state.config.config), ...spec.args] : [...spec.args]
    return withConfig(state, ctx, historyText('config', spec, { argv: args }), (c) => ({ ...c, Cmd: args, ArgsEscaped: true }), { cmdSet: true })
  },
  entrypoint: (spec, state, ctx) => {
    const args = spec.shellForm ? [...shellOf(state.config.config), ...spec.args] : [...spec.args]
    return withConfig(state, ctx, historyText('config', spec, { argv: args }), (c) => ({
      ...c,
      Entrypoint: args,
      // Docker: an ENTRYPOINT clears a CMD inherited from the base, not one set in this stage.
      Cmd: state.cmdSet ? c.Cmd : null,
    }))
  },
  healthcheck: (spec, state, ctx) => withConfig(state, ctx, historyText('config', spec), (c) => ({ ...c, Healthcheck: spec.health })),
  stopsignal: (spec, state, ctx) => withConfig(state, ctx, historyText('config', spec), (c) => ({ ...c, StopSignal: spec.signal })),
  shell: (spec, state, ctx) => withConfig(state, ctx, historyText('config', spec), (c) => ({ ...c, Shell: [...spec.shell] })),
  onbuild: (spec, state, ctx) => withConfig(state, ctx, historyText('config', spec), (c) => ({ ...c, OnBuild: [...(c.OnBuild ?? []), spec.instruction] })),
  maintainer: (spec, state, ctx) => withConfig(state, ctx, historyText('config', spec), (c) => c, { author: spec.name }),
  // The base stage's ONBUILD triggers ran as steps after this vertex (graph/compile); like Docker, the child does not keep them.
  stage: (_spec, state) => {
    const { OnBuild: _triggers, ...config } = state.config.config
    return { ...state, config: { ...state.config, config }, args: [], cmdSet: false }
  },
}

export const configExecutor: Executor<'config'> = {
  kind: 'config',
  async exec(vertex, inputs, ctx) {
    return execPlan(await configExecutor.prepare!(vertex, inputs, ctx), ctx)
  },

  /** Only a WORKDIR whose directory is missing gives a layer step; every other op is done here. */
  async prepare(vertex, inputs, ctx) {
    const spec = literalConfigSpec(vertex.spec, inputs[0]!, solveBudget(ctx))
    // WORKDIR also makes its directory, which needs the image's filesystem: the one async op.
    if (spec.op === 'workdir') return applyWorkdir(inputs[0]!, ctx, resolveWorkdir(inputs[0]!, spec.path))
    const handler = handlers[spec.op] as Handler<PureOp>
    return { state: handler(spec as Extract<ConfigSpec, { op: PureOp }>, inputs[0]!, ctx), cached: false }
  },
}
