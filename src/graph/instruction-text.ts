/**
 * The one place that knows how each instruction is spelled. Two flavours of the same table:
 *
 * - Dockerfile text (`dockerfileText`): what the printer writes and what step descriptions show;
 *   it parses back (BuildKit's frontend, this project's parser) to the same spec.
 * - History text (`historyText`): the `created_by` strings exactly as BuildKit's dockerfile2llb
 *   writes them (`COPY a b # buildkit`, `RUN |1 V=1 /bin/sh -c … # buildkit`, `EXPOSE map[80/tcp:{}]`,
 *   `CMD ["a" "b"]`), so `docker history` reads the same for both builders. Some of these need facts
 *   only known at build time (the SHELL-wrapped argv, the build args in scope, the resolved WORKDIR).
 */
import type { HealthConfig } from '../oci/types.js'
import { goDuration, goList, goQuote, goQuoteList, goQuoteRune, goSet } from '../util/go-format.js'
import { breaksLine, flagValue, heredocDelimiter, jsonArray, looksLikeJson, notRepresentable, pairKey, pairValue, word, type WordMarker, type WordMode } from './dockerfile-words.js'
import type { NodeKind, SpecByKind } from './node.js'
import type { ConfigSpec } from './nodes/config-node.js'
import type { AddSpec } from './nodes/add-node.js'
import type { CopySpec } from './nodes/copy-node.js'
import type { MountSpec, RunSpec } from './nodes/run-node.js'
import type { StepInput } from './stage.js'

export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c']

/** A step as the renderer needs it: kind, spec and the stages/images it reads from. */
export interface StepText<K extends NodeKind = NodeKind> {
  readonly kind: K
  readonly spec: SpecByKind[K]
  readonly deps: readonly StepInput[]
}

export interface TextContext extends WordMode {
  /** How `--from=` / `from=` names a stage or image a step reads from. */
  readonly input: (dep: StepInput) => string
  /**
   * The SHELL in effect: a shell-form command that has no shell-form spelling (a line break without
   * a final newline, text that parses as JSON) is written as exec form through it, which builds the same argv.
   * @default ['/bin/sh', '-c']
   */
  readonly shell?: readonly string[]
}

/** Build-time facts some history strings show. */
export interface HistoryFacts {
  /** The argv after SHELL wrapping (RUN, CMD, ENTRYPOINT). */
  readonly argv?: readonly string[]
  /** Build args in scope (RUN's `|N K=V` prefix lists those with a value). */
  readonly buildArgs?: readonly { readonly name: string; readonly value?: string }[]
  /** WORKDIR resolved against the previous one. */
  readonly workdir?: string
}

/** Descriptions name another stage `<stage>` (a builder has no name) and never fail. */
const DESCRIBE: TextContext = { strict: false, input: (d) => ('ref' in d ? d.ref : '<stage>') }

/** `FROM ref [AS name]` */
export function fromText(ref: string, name?: string): string {
  return `FROM ${ref}${name === undefined ? '' : ` AS ${name}`}`
}

/** The step as a Dockerfile instruction (possibly several lines, for a heredoc). */
export function dockerfileText(step: StepText, ctx: TextContext = DESCRIBE): string {
  return (dockerfileByKind[step.kind] as (s: StepText, c: TextContext) => string)(step, ctx)
}

/** The builder's step description: the Dockerfile text, stages shown as `<stage>`. */
export function describeStep(step: StepText): string {
  return dockerfileText(step, DESCRIBE)
}

/** BuildKit's history `created_by` for the step, or null when BuildKit records none (ONBUILD, a new stage). */
export function historyText<K extends NodeKind>(kind: K, spec: SpecByKind[K], facts: HistoryFacts = {}): string | null {
  return (historyByKind[kind] as (s: SpecByKind[K], f: HistoryFacts) => string | null)(spec, facts)
}

// ---- Dockerfile flavour -------------------------------------------------------------------------

const dockerfileByKind: { readonly [K in NodeKind]: (step: StepText<K>, ctx: TextContext) => string } = {
  source: (s) => fromText(s.spec.ref),
  copy: (s, ctx) => `COPY ${s.spec.fromInput && s.deps[0] ? `--from=${flagValue(ctx.input(s.deps[0]), ctx)} ` : ''}${copyFlags(s.spec, ctx)}${notFlags(paths(s.spec, ctx))}${heredocBodies(s.spec, ctx)}`,
  add: (s, ctx) => `ADD ${s.spec.checksum ? `--checksum=${s.spec.checksum} ` : ''}${s.spec.keepGitDir ? '--keep-git-dir=true ' : ''}${s.spec.unpack ? '' : '--unpack=false '}${copyFlags(s.spec, ctx)}${notFlags(paths(s.spec, ctx))}${heredocBodies(s.spec, ctx)}`,
  run: (s, ctx) => `RUN ${runFlags(s.spec, s.deps, ctx)}${notFlags(command(s.spec.command, s.spec.shellForm, ctx, true))}`,
  config: (s, ctx) => (configByOp[s.spec.op] as (spec: ConfigSpec, ctx: TextContext) => string)(s.spec, ctx),
}

/**
 * The parser takes every leading `--word` of an instruction for a flag, until a bare `--`: text
 * that starts with `--` (a JSON-form source, a command read after `--`) gets one in front.
 */
function notFlags(text: string): string {
  return text.startsWith('--') ? `-- ${text}` : text
}

function copyFlags(spec: CopySpec, ctx: TextContext): string {
  let out = ''
  if (spec.chown) out += `--chown=${flagValue(word(spec.chown, spec, ctx), ctx)} `
  if (spec.chmod !== undefined) out += `--chmod=${flagValue(word(spec.chmod, spec, ctx), ctx)} `
  for (const e of spec.exclude) out += `--exclude=${flagValue(word(e, spec, ctx), ctx)} `
  if (spec.link) out += '--link '
  if (spec.parents) out += '--parents '
  return out
}

/**
 * Sources and destination; the JSON form when a path holds whitespace (the shell form splits on
 * it) or `<<` (the shell form would open a heredoc). Inline files need the shell form.
 */
function paths(spec: CopySpec, ctx: TextContext): string {
  const inline = (spec.inline ?? []).map((f) => (f.expand ? `<<${f.name}` : `<<'${f.name}'`))
  const words = [...spec.sources, spec.dest].map((p) => word(p, spec, ctx))
  const plain = !words.some((p) => /\s/.test(p) || p.includes('<<'))
  if (inline.length > 0) {
    if (!plain && ctx.strict) throw notRepresentable(`a COPY with inline files cannot also have the path ${JSON.stringify(words.find((p) => /\s/.test(p) || p.includes('<<')))}`, { sources: spec.sources })
    return [...words.slice(0, -1), ...inline, words[words.length - 1]!].join(' ')
  }
  // Words that join into a JSON array of strings would read back as the exec form.
  return plain && !looksLikeJson(words.join(' ')) ? words.join(' ') : jsonArray(words)
}

/** Inline files as heredoc bodies after the COPY line; a heredoc body always ends in a newline. */
function heredocBodies(spec: CopySpec, ctx: TextContext): string {
  let out = ''
  for (const f of spec.inline ?? []) {
    // An empty body (the terminator right after the line) is an empty file.
    const whole = f.data === '' || f.data.endsWith('\n')
    if (!whole && ctx.strict) {
      throw notRepresentable(`inline file ${f.name} does not end in a newline, which a heredoc always does`, { name: f.name })
    }
    out += `\n${f.data}${whole ? '' : '\n'}${f.name}`
  }
  return out
}

function runFlags(spec: RunSpec, deps: readonly StepInput[], ctx: TextContext): string {
  let out = ''
  for (const m of spec.mounts) out += `--mount=${flagValue(mountText(m, spec, deps, ctx), ctx)} `
  if (spec.network !== 'default') out += `--network=${spec.network} `
  if (spec.security) out += `--security=${spec.security} `
  return out
}

/**
 * `--mount=` options; defaults left out, so the parser's defaults give back the same spec. Fields
 * are a CSV record (a field holding `,` or starting with `"` is quoted); the paths, ids and env
 * names are words expanded at build time, `from` one expanded from the ARGs while lowering.
 */
function mountText(m: MountSpec, spec: RunSpec, deps: readonly StepInput[], ctx: TextContext): string {
  const o = [`type=${m.type}`, ...mountFields(m, spec, deps, ctx)]
  return o.map((f) => (f.includes(',') || f.startsWith('"') ? `"${f.replace(/"/g, '""')}"` : f)).join(',')
}

function mountFields(m: MountSpec, spec: RunSpec, deps: readonly StepInput[], ctx: TextContext): string[] {
  const o: string[] = []
  const w = (v: string) => word(v, spec, ctx)
  const oct = (n: number) => `0${n.toString(8)}`
  switch (m.type) {
    case 'cache':
      o.push(`target=${w(m.target)}`)
      if (m.id !== m.target) o.push(`id=${w(m.id)}`)
      if (m.sharing !== 'shared') o.push(`sharing=${m.sharing}`)
      if (m.readonly) o.push('readonly')
      if (m.mode !== undefined) o.push(`mode=${oct(m.mode)}`)
      if (m.uid !== undefined) o.push(`uid=${m.uid}`)
      if (m.gid !== undefined) o.push(`gid=${m.gid}`)
      break
    case 'secret':
      o.push(`id=${w(m.id)}`)
      if (m.target !== '' && m.target !== `/run/secrets/${m.id}`) o.push(`target=${w(m.target)}`)
      else if (m.target !== '' && m.env !== undefined) o.push(`target=${w(m.target)}`)
      if (m.env !== undefined) o.push(`env=${w(m.env)}`)
      if (m.required) o.push('required=true')
      if (m.mode !== 0o400) o.push(`mode=${oct(m.mode)}`)
      if (m.uid !== 0) o.push(`uid=${m.uid}`)
      if (m.gid !== 0) o.push(`gid=${m.gid}`)
      break
    case 'bind': {
      o.push(`target=${w(m.target)}`)
      if (m.source !== '.') o.push(`source=${w(m.source)}`)
      const from = m.fromInput === undefined ? undefined : deps[m.fromInput - 1]
      if (from) o.push(`from=${ctx.input(from)}`)
      if (m.readwrite) o.push('rw')
      break
    }
    case 'tmpfs':
      o.push(`target=${w(m.target)}`)
      if (m.size !== undefined) o.push(`size=${m.size}`)
      break
    case 'ssh':
      if (m.id !== 'default') o.push(`id=${w(m.id)}`)
      if (m.target !== '') o.push(`target=${w(m.target)}`)
      if (m.required) o.push('required=true')
      if (m.mode !== 0o600) o.push(`mode=${oct(m.mode)}`)
      if (m.uid !== 0) o.push(`uid=${m.uid}`)
      if (m.gid !== 0) o.push(`gid=${m.gid}`)
      break
  }
  return o
}

/**
 * Shell form as written, a heredoc for a multi-line script ending in a newline (BuildKit runs a
 * lone heredoc's body through the SHELL, body and final newline included), else exec form through
 * the SHELL, which builds the same argv.
 */
function command(args: readonly string[], shellForm: boolean, ctx: TextContext, heredocOk: boolean): string {
  if (!shellForm) return jsonArray(args)
  const text = args[0] ?? ''
  if (heredocOk && text.includes('\n') && text.endsWith('\n') && !text.startsWith('#!')) {
    const eof = heredocDelimiter(text)
    return `<<'${eof}'\n${text}${eof}`
  }
  if (heredocOk && isHeredocCommand(text)) return text
  if (breaksLine(text, ctx.escape) || looksLikeJson(text) || text.trim() !== text || text === '') return jsonArray([...(ctx.shell ?? DEFAULT_SHELL), text])
  return text
}

/**
 * A command the importer made from `RUN cmd <<A <<B` (BuildKit's dispatchRun: the line, then each
 * body and its delimiter): written as it is, it reads back as that same RUN with its heredocs.
 */
function isHeredocCommand(text: string): boolean {
  const [first = '', ...rest] = text.split('\n')
  if (rest.length === 0 || first.trim() !== first || first.endsWith('\\') || looksLikeJson(first)) return false
  const names = [...first.matchAll(/(?:^|\s)\d*<<-?(["']?)([A-Za-z0-9_.-]+)\1(?=\s|$)/g)].map((m) => m[2]!)
  if (names.length === 0) return false
  // The parser ends a body at the first line equal to its name once carriage returns before the
  // line feed are dropped; that line must be the name exactly, or the return would be lost.
  let i = 0
  for (const name of names) {
    while (i < rest.length && rest[i]!.replace(/\r+$/, '') !== name) i++
    if (i === rest.length || rest[i] !== name) return false
    i++
  }
  return i === rest.length
}

const configByOp: { readonly [O in ConfigSpec['op']]: (spec: Extract<ConfigSpec, { op: O }>, ctx: TextContext) => string } = {
  env: (s, ctx) => `ENV ${notFlags(legacyPair(s.vars, s, ctx) ?? s.vars.map(([k, v]) => keyValue(k, v, 'ENV', ctx, s)).join(' '))}`,
  arg: (s, ctx) => `ARG ${notFlags(s.args.map((a) => (a.value === undefined ? a.name : `${a.name}=${pairValue(a.value, `ARG ${a.name}`, ctx, a)}`)).join(' '))}`,
  workdir: (s, ctx) => `WORKDIR ${notFlags(word(s.path, s, ctx))}`,
  user: (s, ctx) => `USER ${notFlags(word(s.user, s, ctx))}`,
  expose: (s, ctx) => `EXPOSE ${notFlags(s.ports.map((p) => word(p, s, ctx)).join(' '))}`,
  volume: (s, ctx) => `VOLUME ${jsonArray(s.paths.map((p) => word(p, s, ctx)))}`,
  label: (s, ctx) => `LABEL ${notFlags(legacyPair(s.labels, s, ctx) ?? s.labels.map(([k, v]) => keyValue(k, v, 'LABEL', ctx, s)).join(' '))}`,
  cmd: (s, ctx) => `CMD ${notFlags(command(s.args, s.shellForm, ctx, false))}`,
  entrypoint: (s, ctx) => `ENTRYPOINT ${notFlags(command(s.args, s.shellForm, ctx, false))}`,
  healthcheck: (s, ctx) => `HEALTHCHECK ${healthText(s.health, ctx)}`,
  stopsignal: (s, ctx) => `STOPSIGNAL ${notFlags(word(s.signal, s, ctx))}`,
  shell: (s) => `SHELL ${jsonArray(s.shell)}`,
  onbuild: (s) => `ONBUILD ${notFlags(s.instruction)}`,
  maintainer: (s) => `MAINTAINER ${notFlags(s.name)}`,
  stage: () => 'FROM <stage>',
}

/**
 * The old `ENV key value words` form, for a marked value read from it: its words and the blanks
 * between them are the value as written, so writing it the same way reads back to the same spec.
 */
function legacyPair(pairs: readonly (readonly [string, string])[], marker: WordMarker, ctx: TextContext): string | undefined {
  const esc = ctx.escape ?? '\\'
  if (!marker.expand || pairs.length !== 1 || (marker.escapeToken ?? '\\') !== esc) return undefined
  const [k, v] = pairs[0]!
  // When `k=v` (as pairValue writes it) is one word with the key before its first `=` and the value
  // as it is, that spelling does (the printer's usual form).
  const pair = `${k}=${pairValue(v, k, ctx, marker)}`
  if (k !== '' && !k.includes('=') && pair === `${k}=${v}` && firstWord(pair, esc) === pair && !/^\s|\s$/.test(v) && !breaksLine(v, esc)) return undefined
  const text = `${k} ${v}`
  // As the parser reads it back (parseNameVal): the old form when the first quote-aware word holds
  // no `=`; the key is the text up to the first run of [\t\v\f\r ], the value all the rest, and
  // the whole was trimmed of Go's blanks (so neither end may be one).
  const blank = /[\t\v\f\r ]/
  if (k === '' || blank.test(k) || blank.test(v[0]!) || isGoSpace(k[0]!) || isGoSpace(v[v.length - 1]!) || breaksLine(v, esc)) return undefined
  if (firstWord(text, esc).includes('=')) return undefined
  return text
}

/**
 * One `key=value` of ENV or LABEL. A marked pair read from a `key=value` word is that word again
 * when it still is one word (a quote opened in the key may hold the value's blanks).
 */
function keyValue(k: string, v: string, keyword: string, ctx: TextContext, marker: WordMarker): string {
  if (marker.expand && (marker.escapeToken ?? '\\') === (ctx.escape ?? '\\')) {
    const pair = `${k}=${v}`
    if (k !== '' && !k.includes('=') && firstWord(pair, ctx.escape ?? '\\') === pair && !breaksLine(pair, ctx.escape)) return pair
  }
  return `${pairKey(k, keyword, ctx, marker)}=${pairValue(v, `${keyword} ${k}`, ctx, marker)}`
}

/** Go's unicode.IsSpace for one UTF-16 unit (JavaScript's \s without U+FEFF, plus U+0085). */
function isGoSpace(c: string): boolean {
  return c === '\u0085' || (c !== '\ufeff' && /\s/.test(c))
}

/** The first word of the parser's quote-aware split (parseWords), quotes and escapes kept. */
function firstWord(text: string, esc: string): string {
  let i = 0
  while (i < text.length && isGoSpace(text[i]!)) i++
  const start = i
  let quote = ''
  for (; i < text.length; i++) {
    const c = text[i]!
    if (quote === '') {
      if (isGoSpace(c)) break
      if (c === '"' || c === "'") quote = c
      else if (c === esc) i++
    } else if (c === quote) quote = ''
    else if (c === esc && quote !== "'") i++
  }
  return text.slice(start, i)
}

function healthText(h: HealthConfig, ctx: TextContext): string {
  if (h.Test[0] === 'NONE') return 'NONE'
  let flags = ''
  // A flag set to 0 is written too: `--interval=0` is in the config (and the vertex key), unlike no flag.
  if (h.Interval !== undefined) flags += `--interval=${goDuration(h.Interval)} `
  if (h.Timeout !== undefined) flags += `--timeout=${goDuration(h.Timeout)} `
  if (h.StartPeriod !== undefined) flags += `--start-period=${goDuration(h.StartPeriod)} `
  if (h.StartInterval !== undefined) flags += `--start-interval=${goDuration(h.StartInterval)} `
  if (h.Retries !== undefined) flags += `--retries=${h.Retries} `
  const shellForm = h.Test[0] === 'CMD-SHELL'
  const text = h.Test[1] ?? ''
  // The exec-form fallback would turn CMD-SHELL into CMD: a different config, so no spelling at all.
  if (shellForm && ctx.strict && (breaksLine(text, ctx.escape) || looksLikeJson(text) || text.trim() !== text || text === '')) {
    throw notRepresentable(`HEALTHCHECK command ${JSON.stringify(text)} has no shell-form spelling`, { test: h.Test })
  }
  return `${flags}CMD ${command(h.Test.slice(1), shellForm, ctx, false)}`
}

// ---- History flavour (BuildKit's dockerfile2llb) -----------------------------------------------

const historyByKind: { readonly [K in NodeKind]: (spec: SpecByKind[K], facts: HistoryFacts) => string | null } = {
  source: () => null,
  copy: (spec) => copyHistory('COPY', spec),
  add: (spec) => copyHistory('ADD', spec),
  run: (spec, f) => `RUN ${argsPrefix(f.buildArgs ?? [])}${(f.argv ?? spec.command).join(' ')} # buildkit`,
  config: (spec, f) => (configHistory[spec.op] as (s: ConfigSpec, f: HistoryFacts) => string | null)(spec, f),
}

/** `COPY [--chown=…] [--chmod=…] <src>… <dest> # buildkit` (BuildKit leaves out --from, --exclude and --link). */
function copyHistory(kind: 'COPY' | 'ADD', spec: CopySpec | AddSpec): string {
  let s: string = kind
  if (spec.parents) s += ' --parents'
  if (spec.chown) s += ` --chown=${spec.chown}`
  if (spec.chmod) s += ` --chmod=${spec.chmod}`
  for (const src of spec.sources) s += ` ${src}`
  // BuildKit's dispatchCopy names a heredoc source `<<name`.
  for (const f of (spec as CopySpec).inline ?? []) s += ` <<${f.name}`
  return `${s} ${spec.dest} # buildkit`
}

/** BuildKit's `|N K=V ` prefix: the build args in scope that have a value. */
function argsPrefix(args: readonly { readonly name: string; readonly value?: string }[]): string {
  const set = args.filter((a) => a.value !== undefined)
  if (set.length === 0) return ''
  return `|${set.length} ${set.map((a) => `${a.name}=${a.value}`).join(' ')} `
}

const configHistory: { readonly [O in ConfigSpec['op']]: (spec: Extract<ConfigSpec, { op: O }>, f: HistoryFacts) => string | null } = {
  env: (s) => `ENV ${s.vars.map(([k, v]) => `${k}=${v}`).join(' ')}`,
  arg: (s) => `ARG ${s.args.map((a) => (a.value === undefined ? a.name : `${a.name}=${a.value}`)).join(' ')}`,
  workdir: (s, f) => `WORKDIR ${f.workdir ?? s.path}`,
  user: (s) => `USER ${s.user}`,
  expose: (s) => `EXPOSE ${goSet(s.ports)}`,
  volume: (s) => `VOLUME ${goList(s.paths)}`,
  label: (s) => `LABEL ${s.labels.map(([k, v]) => `${k}=${v}`).join(' ')}`,
  cmd: (s, f) => `CMD ${goQuoteList(f.argv ?? s.args)}`,
  entrypoint: (s, f) => `ENTRYPOINT ${goQuoteList(f.argv ?? s.args)}`,
  healthcheck: (s) => {
    const h = s.health
    return (
      `HEALTHCHECK &{${goQuoteList(h.Test)} ${goQuote(goDuration(h.Interval ?? 0))} ${goQuote(goDuration(h.Timeout ?? 0))} ` +
      `${goQuote(goDuration(h.StartPeriod ?? 0))} ${goQuote(goDuration(h.StartInterval ?? 0))} ${goQuoteRune(h.Retries ?? 0)}}`
    )
  },
  stopsignal: (s) => `STOPSIGNAL ${s.signal}`,
  shell: (s) => `SHELL ${goList(s.shell)}`,
  // BuildKit records no history entry for ONBUILD; the trigger lives in the config only.
  onbuild: () => null,
  maintainer: (s) => `MAINTAINER ${s.name}`,
  stage: () => null,
}
