/**
 * IR step → the builder call that makes exactly that step (same spec, so the same vertex key and
 * image digest). One entry per kind and config op; the generator only strings them together.
 */
import type { Expandable } from '../graph/expansion.js'
import type { NodeKind, SpecByKind } from '../graph/node.js'
import type { ConfigSpec } from '../graph/nodes/config-node.js'
import type { MountSpec } from '../graph/nodes/run-node.js'
import type { Step, StepInput } from '../graph/stage.js'
import { goDuration } from '../util/go-format.js'

export interface CallContext {
  /** A stage or image a step reads from, as a TS expression (a stage const, or a string literal). */
  readonly input: (dep: StepInput) => string
  /** A TS expression for an ARG value: lets the generator route defaults through the build-args parameter. */
  readonly argValue: (name: string, value: string | undefined, marked: boolean) => { value: string; opts?: string }
}

/** A TS string literal, single-quoted. */
export function str(s: string): string {
  return `'${s.replace(/[\\'\n\r\t\u2028\u2029]/g, (c) => ({ '\\': '\\\\', "'": "\\'", '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u2028': '\\u2028', '\u2029': '\\u2029' })[c]!)}'`
}

const strs = (list: readonly string[]) => `[${list.map(str).join(', ')}]`

/** An object literal from the defined entries, or '' when none. */
function obj(entries: readonly (readonly [string, string | undefined])[]): string {
  const parts = entries.filter((e): e is readonly [string, string] => e[1] !== undefined).map(([k, v]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : str(k)}: ${v}`)
  return parts.length === 0 ? '' : `{ ${parts.join(', ')} }`
}

function wordOpts(spec: Expandable): readonly (readonly [string, string | undefined])[] {
  return [['expand', spec.expand ? 'true' : undefined], ['escapeToken', spec.escapeToken ? str(spec.escapeToken) : undefined]]
}

const args = (...a: string[]) => {
  while (a.length > 0 && a[a.length - 1] === '') a.pop()
  return a.map((x) => (x === '' ? 'undefined' : x)).join(', ')
}

/** Pairs (ENV, LABEL) as the shortest call that keeps their order: one pair, a record, or a list of pairs. */
function pairsArg(pairs: readonly (readonly [string, string])[]): string[] {
  if (pairs.length === 1) return [str(pairs[0]![0]), str(pairs[0]![1])]
  const keys = pairs.map(([k]) => k)
  // An object literal reorders integer-like keys and merges duplicates.
  if (new Set(keys).size === keys.length && !keys.some((k) => /^\d+$/.test(k))) return [`{ ${pairs.map(([k, v]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : str(k)}: ${str(v)}`).join(', ')} }`, '']
  return [`[${pairs.map(([k, v]) => `[${str(k)}, ${str(v)}]`).join(', ')}]`, '']
}

function mountObj(m: MountSpec, deps: readonly StepInput[], ctx: CallContext): string {
  switch (m.type) {
    case 'cache':
      return obj([['type', str('cache')], ['target', str(m.target)], ['id', m.id !== m.target ? str(m.id) : undefined], ['sharing', m.sharing !== 'shared' ? str(m.sharing) : undefined],
        ['readonly', m.readonly ? 'true' : undefined], ['mode', m.mode !== undefined ? `0o${m.mode.toString(8)}` : undefined], ['uid', m.uid?.toString()], ['gid', m.gid?.toString()]])
    case 'secret': {
      const defaultTarget = m.env ? '' : `/run/secrets/${m.id}`
      return obj([['type', str('secret')], ['id', str(m.id)], ['target', m.target !== defaultTarget ? str(m.target) : undefined], ['env', m.env !== undefined ? str(m.env) : undefined],
        ['required', m.required ? 'true' : undefined], ['mode', m.mode !== 0o400 ? `0o${m.mode.toString(8)}` : undefined], ['uid', m.uid ? String(m.uid) : undefined], ['gid', m.gid ? String(m.gid) : undefined]])
    }
    case 'bind': {
      const from = m.fromInput === undefined ? undefined : deps[m.fromInput - 1]
      return obj([['type', str('bind')], ['target', str(m.target)], ['source', m.source !== '.' ? str(m.source) : undefined], ['from', from ? ctx.input(from) : undefined], ['readwrite', m.readwrite ? 'true' : undefined]])
    }
    case 'tmpfs':
      return obj([['type', str('tmpfs')], ['target', str(m.target)], ['size', m.size?.toString()]])
    case 'ssh':
      return obj([['type', str('ssh')], ['id', m.id !== 'default' ? str(m.id) : undefined], ['target', m.target !== '' ? str(m.target) : undefined], ['required', m.required ? 'true' : undefined],
        ['mode', m.mode !== 0o600 ? `0o${m.mode.toString(8)}` : undefined], ['uid', m.uid ? String(m.uid) : undefined], ['gid', m.gid ? String(m.gid) : undefined]])
  }
}

type CallFn<K extends NodeKind> = (spec: SpecByKind[K], deps: readonly StepInput[], ctx: CallContext) => string

const byKind: { readonly [K in NodeKind]: CallFn<K> } = {
  source: (s) => `from(${str(s.ref)})`,
  copy: (s, deps, ctx) => {
    const inline = (s as { inline?: readonly { name: string; data: string; expand?: true }[] }).inline
    const o = obj([['from', s.fromInput && deps[0] ? ctx.input(deps[0]) : undefined], ['chown', s.chown !== undefined ? str(s.chown) : undefined], ['chmod', s.chmod !== undefined ? str(s.chmod) : undefined],
      ['exclude', s.exclude.length > 0 ? strs(s.exclude) : undefined], ['link', s.link ? 'true' : undefined], ['parents', s.parents ? 'true' : undefined],
      ['inline', inline?.length ? `[${inline.map((f) => obj([['name', str(f.name)], ['content', str(f.data)], ['expand', f.expand ? 'true' : undefined]])).join(', ')}]` : undefined],
      ...wordOpts(s)])
    return `copy(${args(s.sources.length === 1 ? str(s.sources[0]!) : strs(s.sources), str(s.dest), o)})`
  },
  add: (s) => {
    const inline = s.inline
    const o = obj([['checksum', s.checksum !== undefined ? str(s.checksum) : undefined], ['keepGitDir', s.keepGitDir ? 'true' : undefined], ['unpack', s.unpack ? undefined : 'false'], ['chown', s.chown !== undefined ? str(s.chown) : undefined],
      ['chmod', s.chmod !== undefined ? str(s.chmod) : undefined], ['exclude', s.exclude.length > 0 ? strs(s.exclude) : undefined], ['link', s.link ? 'true' : undefined],
      ['inline', inline?.length ? `[${inline.map((f) => obj([['name', str(f.name)], ['content', str(f.data)], ['expand', f.expand ? 'true' : undefined]])).join(', ')}]` : undefined],
      ...wordOpts(s)])
    return `add(${args(s.sources.length === 1 ? str(s.sources[0]!) : strs(s.sources), str(s.dest), o)})`
  },
  run: (s, deps, ctx) => {
    const o = obj([['network', s.network !== 'default' ? str(s.network) : undefined], ['security', s.security ? str(s.security) : undefined], ['mounts', s.mounts.length > 0 ? `[${s.mounts.map((m) => mountObj(m, deps, ctx)).join(', ')}]` : undefined], ...wordOpts(s)])
    return `run(${args(s.shellForm ? str(s.command[0]!) : strs(s.command), o)})`
  },
  config: (s, deps, ctx) => (byOp[s.op] as (spec: ConfigSpec, ctx: CallContext) => string)(s, ctx),
}

const byOp: { readonly [O in ConfigSpec['op']]: (spec: Extract<ConfigSpec, { op: O }>, ctx: CallContext) => string } = {
  env: (s) => `env(${args(...pairsArg(s.vars), obj(wordOpts(s)))})`,
  arg: (s, ctx) => {
    if (s.args.length === 1) {
      const a = s.args[0]!
      const v = ctx.argValue(a.name, a.value, a.expand === true)
      return `arg(${args(str(a.name), v.value, v.opts ?? obj(wordOpts(a)))})`
    }
    // Several in one ARG: one step, so one call with the list (words marked as the first default is).
    const marked = s.args.find((a) => a.value !== undefined)
    const list = s.args.map((a) => obj([['name', str(a.name)], ['value', a.value === undefined ? undefined : ctx.argValue(a.name, a.value, false).value]]))
    return `arg(${args(`[${list.join(', ')}]`, '', marked ? obj(wordOpts(marked)) : '')})`
  },
  workdir: (s) => `workdir(${args(str(s.path), obj(wordOpts(s)))})`,
  user: (s) => `user(${args(str(s.user), obj(wordOpts(s)))})`,
  expose: (s) => `expose(${args(s.ports.length === 1 ? str(s.ports[0]!) : strs(s.ports), obj(wordOpts(s)))})`,
  volume: (s) => `volume(${args(s.paths.length === 1 ? str(s.paths[0]!) : strs(s.paths), obj(wordOpts(s)))})`,
  label: (s) => `label(${args(...pairsArg(s.labels), obj(wordOpts(s)))})`,
  cmd: (s) => `cmd(${s.shellForm ? str(s.args[0]!) : strs(s.args)})`,
  entrypoint: (s) => `entrypoint(${s.shellForm ? str(s.args[0]!) : strs(s.args)})`,
  healthcheck: (s) => {
    const h = s.health
    if (h.Test[0] === 'NONE') return `healthcheck('none')`
    const dur = (ns: number | undefined) => (ns === undefined ? undefined : str(goDuration(ns)))
    const start = (h as { StartInterval?: number }).StartInterval
    return `healthcheck(${obj([['test', h.Test[0] === 'CMD-SHELL' ? str(h.Test[1] ?? '') : strs(h.Test.slice(1))], ['interval', dur(h.Interval)], ['timeout', dur(h.Timeout)],
      ['startPeriod', dur(h.StartPeriod)], ['startInterval', dur(start)], ['retries', h.Retries?.toString()]])})`
  },
  stopsignal: (s) => `stopSignal(${args(str(s.signal), obj(wordOpts(s)))})`,
  shell: (s) => `shell(${strs(s.shell)})`,
  onbuild: (s) => `onBuild(${str(s.instruction)})`,
  maintainer: (s) => `maintainer(${str(s.name)})`,
  stage: () => '',
}

/** The call (without the leading dot) that appends this step to a builder. */
export function stepCall(step: Step, ctx: CallContext): string {
  return (byKind[step.kind] as CallFn<NodeKind>)(step.spec, step.deps, ctx)
}
