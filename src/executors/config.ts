import { posix } from 'node:path'
import type { ConfigSpec } from '../graph/nodes/config-node.js'
import type { ContainerConfig } from '../oci/types.js'
import type { ExecContext, Executor, ImageState } from '../solver/types.js'
import { goDuration, goList, goQuote, goQuoteList, goQuoteRune, goSet } from './go-format.js'
import { envMap, withConfig } from './state.js'
import { applyWorkdir } from './workdir.js'

export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c']

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

/** One handler per metadata op; history strings follow BuildKit's dockerfile2llb. */
const handlers: { readonly [O in PureOp]: Handler<O> } = {
  env: (spec, state, ctx) =>
    withConfig(state, ctx, `ENV ${spec.vars.map(([k, v]) => `${k}=${v}`).join(' ')}`, (c) => {
      const env = envMap(c.Env)
      for (const [k, v] of spec.vars) env.set(k, v)
      return { ...c, Env: [...env].map(([k, v]) => `${k}=${v}`) }
    }),
  arg: (spec, state, ctx) => {
    const args = state.args.filter((a) => !spec.args.some((n) => n.name === a.name))
    for (const a of spec.args) args.push(a.value === undefined ? { name: a.name } : { name: a.name, value: a.value })
    const text = spec.args.map((a) => (a.value === undefined ? a.name : `${a.name}=${a.value}`)).join(' ')
    return withConfig(state, ctx, `ARG ${text}`, (c) => c, { args })
  },
  user: (spec, state, ctx) => withConfig(state, ctx, `USER ${spec.user}`, (c) => ({ ...c, User: spec.user })),
  expose: (spec, state, ctx) =>
    withConfig(state, ctx, `EXPOSE ${goSet(spec.ports)}`, (c) => {
      const ports: Record<string, Record<string, never>> = { ...(c.ExposedPorts ?? {}) }
      for (const p of spec.ports) ports[p] = {}
      return { ...c, ExposedPorts: ports }
    }),
  volume: (spec, state, ctx) =>
    withConfig(state, ctx, `VOLUME ${goList(spec.paths)}`, (c) => {
      const vols: Record<string, Record<string, never>> = { ...(c.Volumes ?? {}) }
      for (const p of spec.paths) vols[p] = {}
      return { ...c, Volumes: vols }
    }),
  label: (spec, state, ctx) =>
    withConfig(state, ctx, `LABEL ${spec.labels.map(([k, v]) => `${k}=${v}`).join(' ')}`, (c) => {
      const labels: Record<string, string> = { ...(c.Labels ?? {}) }
      for (const [k, v] of spec.labels) labels[k] = v
      return { ...c, Labels: labels }
    }),
  cmd: (spec, state, ctx) => {
    const args = spec.shellForm ? [...shellOf(state.config.config), ...spec.args] : [...spec.args]
    return withConfig(state, ctx, `CMD ${goQuoteList(args)}`, (c) => ({ ...c, Cmd: args, ArgsEscaped: true }), { cmdSet: true })
  },
  entrypoint: (spec, state, ctx) => {
    const args = spec.shellForm ? [...shellOf(state.config.config), ...spec.args] : [...spec.args]
    return withConfig(state, ctx, `ENTRYPOINT ${goQuoteList(args)}`, (c) => ({
      ...c,
      Entrypoint: args,
      // Docker: an ENTRYPOINT clears a CMD inherited from the base, not one set in this stage.
      Cmd: state.cmdSet ? c.Cmd : null,
    }))
  },
  healthcheck: (spec, state, ctx) => {
    const h = spec.health
    const text =
      `HEALTHCHECK &{${goQuoteList(h.Test)} ${goQuote(goDuration(h.Interval ?? 0))} ${goQuote(goDuration(h.Timeout ?? 0))} ` +
      `${goQuote(goDuration(h.StartPeriod ?? 0))} ${goQuote(goDuration(h.StartInterval ?? 0))} ${goQuoteRune(h.Retries ?? 0)}}`
    return withConfig(state, ctx, text, (c) => ({ ...c, Healthcheck: h }))
  },
  stopsignal: (spec, state, ctx) => withConfig(state, ctx, `STOPSIGNAL ${spec.signal}`, (c) => ({ ...c, StopSignal: spec.signal })),
  shell: (spec, state, ctx) => withConfig(state, ctx, `SHELL ${goList(spec.shell)}`, (c) => ({ ...c, Shell: [...spec.shell] })),
  // BuildKit records no history entry for ONBUILD; the trigger lives in the config only.
  onbuild: (spec, state, ctx) => withConfig(state, ctx, null, (c) => ({ ...c, OnBuild: [...(c.OnBuild ?? []), spec.instruction] })),
  maintainer: (spec, state, ctx) => withConfig(state, ctx, `MAINTAINER ${spec.name}`, (c) => c, { author: spec.name }),
  stage: (_spec, state) => ({ ...state, args: [], cmdSet: false }),
}

export const configExecutor: Executor<'config'> = {
  kind: 'config',
  async exec(vertex, inputs, ctx) {
    // WORKDIR also makes its directory, which needs the image's filesystem: the one async op.
    if (vertex.spec.op === 'workdir') return applyWorkdir(inputs[0]!, ctx, resolveWorkdir(inputs[0]!, vertex.spec.path))
    const handler = handlers[vertex.spec.op] as Handler<PureOp>
    return { state: handler(vertex.spec as Extract<ConfigSpec, { op: PureOp }>, inputs[0]!, ctx), cached: false }
  },
}
