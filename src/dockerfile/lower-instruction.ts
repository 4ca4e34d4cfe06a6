/**
 * One Dockerfile instruction (inside a stage) as builder calls, with BuildKit's semantics. Words the
 * frontend expands against the stage's environment are passed as written with `{ expand: true }`
 * (graph/expansion.ts); words it expands from ARGs before anything runs (`--from`, `--mount`
 * options) are expanded here. FROM and the stage's ARG scope are the importer's (import.ts).
 */
import type { ImageBuilder } from '../builder/image-builder.js'
import type { CopyOptions, FromSource, HealthcheckOptions, RunMount, WordOptions } from '../builder/options.js'
import { ErrorCodes } from '../errors.js'
import { processWord, type ShellEnv } from '../shell/expand.js'
import type { ExpansionBudget } from '../shell/limits.js'
import type { Flag, Heredoc, Instruction } from './ast.js'
import { atInstruction, instructionError, unsupported } from './lower-errors.js'

export interface LowerScope {
  readonly escapeToken: '\\' | '`'
  /** ARG values known while lowering (global ARGs, the stage's ARGs with literal values): for `--from` and `--mount` words. */
  readonly args: ShellEnv
  /** Expansion work the whole Dockerfile may still take (shared by its words). @default one per word */
  readonly budget?: ExpansionBudget
  /** A `--from` / `from=` value (expanded) as a stage builder or an image reference; throws UNDEFINED_STAGE. */
  readonly input: (name: string, inst: Instruction) => FromSource
  /** An ARG declaration as the stage scope resolves it (build-arg override, global value, platform ARG). */
  readonly arg: (name: string, defaultWord: string | undefined) => { readonly name: string; readonly value?: string; readonly expand?: boolean }
  /** A new builder FROM scratch (for the file a `#!` heredoc script is run from). */
  readonly scratch: () => ImageBuilder
}

/** The flags each instruction accepts (BuildKit's, as of Dockerfile 1.7 plus labs' `--parents`/`--exclude`). */
const FLAGS: Readonly<Record<string, readonly string[]>> = {
  COPY: ['from', 'chown', 'chmod', 'link', 'exclude', 'parents'],
  ADD: ['chown', 'chmod', 'link', 'exclude', 'checksum', 'keep-git-dir', 'unpack'],
  RUN: ['mount', 'network', 'security', 'device'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
}

function flagsOf(inst: Instruction): Map<string, Flag[]> {
  const allowed = FLAGS[inst.keyword] ?? []
  const out = new Map<string, Flag[]>()
  for (const f of inst.flags) {
    if (!allowed.includes(f.name)) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `unknown flag: --${f.name}`, { flag: f.name })
    out.set(f.name, [...(out.get(f.name) ?? []), f])
  }
  return out
}

function one(inst: Instruction, flags: Map<string, Flag[]>, name: string): string | undefined {
  const list = flags.get(name)
  if (!list) return undefined
  const last = list[list.length - 1]!
  return last.value ?? ''
}

function bool(inst: Instruction, flags: Map<string, Flag[]>, name: string): boolean {
  const list = flags.get(name)
  if (!list) return false
  const v = list[list.length - 1]!.value
  if (v === undefined || v === 'true') return true
  if (v === 'false') return false
  throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `--${name} expects a boolean, got ${JSON.stringify(v)}`, { flag: name })
}

function words(scope: LowerScope): WordOptions {
  return scope.escapeToken === '`' ? { expand: true, escapeToken: '`' } : { expand: true }
}

/** Words BuildKit expands from ARGs while it lowers (`--from`, `--mount` options). */
function argWord(w: string, scope: LowerScope): string {
  return processWord(w, scope.args, { escapeToken: scope.escapeToken, ...(scope.budget ? { budget: scope.budget } : {}) }).value
}

function single(inst: Instruction): string {
  if (inst.args.length === 0 || inst.args[0] === '') throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `${inst.keyword} requires exactly one argument`)
  return inst.args.length === 1 ? inst.args[0]! : inst.args.join(' ')
}

/** A heredoc word in a COPY/RUN argument list (`<<EOF`, `<<-'EOF'`, `3<<EOF`), as BuildKit's ParseHeredoc reads it. */
function heredocName(word: string): string | undefined {
  const m = /^(\d*)<<(-?)(.*)$/s.exec(word)
  if (!m || m[3] === '' || m[3]!.includes('<')) return undefined
  const name = m[3]!.replace(/^(["'])(.*)\1$/s, '$2')
  return /\s/.test(name) ? undefined : name
}

/** `<<-`: leading tabs of every line go (BuildKit's ChompHeredocContent). */
function heredocData(h: Heredoc): string {
  return h.chomp ? h.content.replace(/^\t+/gm, '') : h.content
}

/** Applies one instruction of a stage (not FROM) to `b`. */
export function lowerInstruction(b: ImageBuilder, inst: Instruction, scope: LowerScope): ImageBuilder {
  return atInstruction(inst, () => lower(b, inst, scope))
}

function lower(b: ImageBuilder, inst: Instruction, scope: LowerScope): ImageBuilder {
  const flags = flagsOf(inst)
  const w = words(scope)
  switch (inst.keyword) {
    case 'FROM':
      throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, 'FROM is not allowed here')
    case 'ARG': {
      const decls = inst.args.map((word) => {
        const i = word.indexOf('=')
        return scope.arg(i < 0 ? word : word.slice(0, i), i < 0 ? undefined : word.slice(i + 1))
      })
      if (decls.length === 0) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, 'ARG requires at least one argument')
      return b.arg(decls, undefined, w)
    }
    case 'ENV':
    case 'LABEL': {
      const pairs = (inst.pairs ?? []).map((p) => [p.key, p.value] as const)
      if (pairs.length === 0) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `${inst.keyword} requires at least one argument`)
      return inst.keyword === 'ENV' ? b.env(pairs, undefined, w) : b.label(pairs, undefined, w)
    }
    case 'WORKDIR':
      return b.workdir(single(inst), w)
    case 'USER':
      return b.user(single(inst), w)
    case 'STOPSIGNAL':
      return b.stopSignal(single(inst), w)
    case 'EXPOSE':
      if (inst.args.length === 0) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, 'EXPOSE requires at least one argument')
      return b.expose(inst.args, w)
    case 'VOLUME': {
      const paths = inst.args.filter((p) => p !== '')
      if (paths.length === 0) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, 'VOLUME requires at least one argument')
      return b.volume(paths, w)
    }
    case 'MAINTAINER':
      return b.maintainer(single(inst))
    case 'CMD':
      return b.cmd(inst.json ? inst.args : single(inst))
    case 'ENTRYPOINT':
      return b.entrypoint(inst.json ? inst.args : single(inst))
    case 'SHELL':
      if (!inst.json) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, 'SHELL requires the arguments to be in JSON form')
      return b.shell(inst.args)
    case 'ONBUILD': {
      const trigger = inst.onbuild
      if (!trigger) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, 'ONBUILD requires an instruction')
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(trigger.keyword)) {
        throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `${trigger.keyword} isn't allowed as an ONBUILD trigger`)
      }
      // BuildKit stores the trigger as written after ONBUILD (its parser's `original`), heredoc bodies appended.
      let text = inst.original.replace(/^\s*onbuild\s+/i, '')
      for (const h of inst.heredocs) text += `\n${h.content}${h.name}`
      return b.onBuild(text)
    }
    case 'HEALTHCHECK':
      return healthcheck(b, inst, flags)
    case 'RUN':
      return run(b, inst, flags, scope)
    case 'COPY':
    case 'ADD':
      return copyOrAdd(b, inst, flags, scope)
  }
}

function healthcheck(b: ImageBuilder, inst: Instruction, flags: Map<string, Flag[]>): ImageBuilder {
  const type = (inst.args[0] ?? '').toUpperCase()
  if (type === 'NONE') {
    if (inst.args.length > 1 || flags.size > 0) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, "HEALTHCHECK NONE takes no arguments or flags")
    return b.healthcheck('none')
  }
  if (type !== 'CMD') throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `unknown type for HEALTHCHECK: ${JSON.stringify(inst.args[0] ?? '')}`)
  const rest = inst.args.slice(1)
  if (rest.length === 0) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, 'HEALTHCHECK CMD needs a command')
  const retries = one(inst, flags, 'retries')
  const opts: HealthcheckOptions = {
    test: inst.json ? rest : rest.join(' '),
    ...durationOpt(inst, flags, 'interval', 'interval'),
    ...durationOpt(inst, flags, 'timeout', 'timeout'),
    ...durationOpt(inst, flags, 'start-period', 'startPeriod'),
    ...durationOpt(inst, flags, 'start-interval', 'startInterval'),
    ...(retries !== undefined ? { retries: retriesOf(inst, retries) } : {}),
  }
  return b.healthcheck(opts)
}

function durationOpt(inst: Instruction, flags: Map<string, Flag[]>, flag: string, key: string): Record<string, string> {
  const v = one(inst, flags, flag)
  return v === undefined || v === '' ? {} : { [key]: v }
}

function retriesOf(inst: Instruction, v: string): number {
  if (!/^\d+$/.test(v)) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `invalid --retries ${JSON.stringify(v)}`)
  return Number(v)
}

function run(b: ImageBuilder, inst: Instruction, flags: Map<string, Flag[]>, scope: LowerScope): ImageBuilder {
  const security = one(inst, flags, 'security')
  if (security !== undefined && security !== 'sandbox' && security !== 'insecure') {
    throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `invalid --security ${JSON.stringify(security)} (sandbox or insecure)`)
  }
  // `RUN --device` is Dockerfile labs (1.14-labs on): CDI device names resolved by the builder's CDI registry.
  if (flags.has('device')) throw unsupported(inst, 'RUN --device', 'CDI devices (Dockerfile labs) are not passed into build steps: there is no CDI device registry')
  const net = one(inst, flags, 'network')
  if (net !== undefined && !['default', 'none', 'host'].includes(net)) {
    throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `invalid --network ${JSON.stringify(net)} (default, none or host)`)
  }
  const mounts = (flags.get('mount') ?? []).map((f) => mountOf(inst, f.value ?? '', scope))
  const opts = {
    ...(net !== undefined ? { network: net as 'default' | 'none' | 'host' } : {}),
    // Entitlements (security.insecure, network.host) are the build's to grant: checked when the step runs, as BuildKit does.
    ...(security === 'insecure' ? { security: 'insecure' as const } : {}),
    ...(mounts.length > 0 ? { mounts, ...words(scope) } : {}),
  }
  if (inst.json) {
    if (inst.heredocs.length > 0) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, 'a heredoc needs the shell form of RUN')
    return b.run(inst.args, opts)
  }
  const cmd = single(inst)
  if (inst.heredocs.length === 0) return b.run(cmd, opts)
  // BuildKit's dispatchRun: a lone heredoc is the script itself; otherwise the shell reads the heredocs.
  const h = inst.heredocs[0]!
  if (inst.heredocs.length === 1 && heredocName(cmd.trim()) !== undefined) {
    if (h.content.startsWith('#!')) {
      // BuildKit: the script becomes a 0755 file in a scratch state, mounted at /dev/pipes/, and is run directly.
      // Built as `COPY --chmod=755 <<'EOF' /` would be, so a printed form reads back the same.
      const script = scope.scratch().copy([], '/', { ...words(scope), inline: [{ name: h.name, content: heredocData(h) }], chmod: '755' })
      const mount: RunMount = { type: 'bind', target: '/dev/pipes/', source: '/', from: script }
      return b.run([`/dev/pipes/${h.name}`], { ...opts, ...words(scope), mounts: [...(opts.mounts ?? []), mount] })
    }
    return b.run(heredocData(h), opts)
  }
  let full = cmd
  for (const d of inst.heredocs) full += `\n${d.content}${d.name}`
  return b.run(full, opts)
}

/** Mount options kept as written for build-time expansion against the stage's env (RunSpec `expand`). */
const MOUNT_WORDS = new Set(['target', 'dst', 'destination', 'source', 'src', 'id', 'env'])

/**
 * `--mount=type=…,target=…`: BuildKit's comma-separated key=value list (csv quoting). Paths, ids and
 * env names are expanded at build time with the stage's env; the rest (from, type, modes) now, from ARGs.
 */
function mountOf(inst: Instruction, text: string, scope: LowerScope): RunMount {
  const fields = new Map<string, string | undefined>()
  for (const part of csvFields(text)) {
    const i = part.indexOf('=')
    const key = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase()
    const value = i < 0 ? undefined : part.slice(i + 1)
    fields.set(key, value === undefined || MOUNT_WORDS.has(key) ? value : argWord(value, scope))
  }
  const bad = (why: string) => instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `invalid --mount ${JSON.stringify(text)}: ${why}`)
  const str = (...keys: string[]) => { for (const k of keys) if (fields.has(k)) return fields.get(k) ?? ''; return undefined }
  const flag = (...keys: string[]) => {
    for (const k of keys) {
      if (!fields.has(k)) continue
      const v = fields.get(k)
      if (v === undefined || v === 'true') return true
      if (v === 'false') return false
      throw bad(`${k} expects a boolean`)
    }
    return undefined
  }
  const num = (k: string, base = 10) => {
    const v = fields.get(k)
    if (v === undefined) return undefined
    const n = parseInt(v, base)
    if (!Number.isFinite(n) || n < 0) throw bad(`invalid ${k}`)
    return n
  }
  const type = str('type') ?? 'bind'
  // BuildKit resolves a relative (or missing) target against the working dir.
  const target = str('target', 'dst', 'destination') || (type === 'secret' || type === 'ssh' ? undefined : '.')
  switch (type) {
    case 'bind': {
      if (!target) throw bad('target is required')
      const from = str('from')
      const rw = flag('readwrite', 'rw')
      const ro = flag('readonly', 'ro')
      return {
        type: 'bind', target, ...(str('source', 'src') !== undefined ? { source: str('source', 'src')! } : {}),
        ...(from ? { from: scope.input(from, inst) } : {}), readwrite: rw === true || ro === false,
      }
    }
    case 'cache': {
      if (!target) throw bad('target is required')
      if (fields.has('from') || fields.has('source') || fields.has('src')) throw unsupported(inst, 'RUN --mount=type=cache,from=', 'a cache mount seeded from another stage')
      const sharing = str('sharing')
      if (sharing !== undefined && !['shared', 'private', 'locked'].includes(sharing)) throw bad('sharing is shared, private or locked')
      return {
        type: 'cache', target, ...(str('id') ? { id: str('id')! } : {}), ...(sharing ? { sharing: sharing as 'shared' } : {}),
        ...(flag('readonly', 'ro') ? { readonly: true } : {}),
        ...(num('mode', 8) !== undefined ? { mode: num('mode', 8)! } : {}), ...(num('uid') !== undefined ? { uid: num('uid')! } : {}), ...(num('gid') !== undefined ? { gid: num('gid')! } : {}),
      }
    }
    case 'secret': {
      const id = str('id') ?? (target ? target.split('/').pop()! : undefined)
      if (!id) throw bad('id or target is required')
      return {
        type: 'secret', id, ...(target ? { target } : {}), ...(str('env') ? { env: str('env')! } : {}), ...(flag('required') ? { required: true } : {}),
        ...(num('mode', 8) !== undefined ? { mode: num('mode', 8)! } : {}), ...(num('uid') !== undefined ? { uid: num('uid')! } : {}), ...(num('gid') !== undefined ? { gid: num('gid')! } : {}),
      }
    }
    case 'tmpfs': {
      if (!target) throw bad('target is required')
      const size = str('size')
      return { type: 'tmpfs', target, ...(size ? { size: bytesOf(size, bad) } : {}) }
    }
    case 'ssh': {
      // BuildKit's dispatchSSH: id defaults to "default", the socket to /run/buildkit/ssh_agent.<n>, mode 0600.
      if (fields.has('from') || fields.has('source') || fields.has('src')) throw bad('ssh does not support from or source')
      return {
        type: 'ssh', ...(str('id') ? { id: str('id')! } : {}), ...(target ? { target } : {}), ...(flag('required') ? { required: true } : {}),
        ...(num('mode', 8) !== undefined ? { mode: num('mode', 8)! } : {}), ...(num('uid') !== undefined ? { uid: num('uid')! } : {}), ...(num('gid') !== undefined ? { gid: num('gid')! } : {}),
      }
    }
    default:
      throw bad(`unknown type ${JSON.stringify(type)}`)
  }
}

function bytesOf(size: string, bad: (why: string) => Error): number {
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(size.trim())
  if (!m) throw bad(`invalid size ${JSON.stringify(size)}`)
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]!
}

/** Splits a csv record as Go's encoding/csv does for one line (double quotes, `""` inside quotes). */
function csvFields(text: string): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cur += '"'; i++ } else if (c === '"') quoted = false
      else cur += c
    } else if (c === '"' && cur === '') quoted = true
    else if (c === ',') { out.push(cur); cur = '' } else cur += c
  }
  out.push(cur)
  return out.filter((f) => f !== '')
}

function copyOrAdd(b: ImageBuilder, inst: Instruction, flags: Map<string, Flag[]>, scope: LowerScope): ImageBuilder {
  const kind = inst.keyword
  if (inst.args.length < 2) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `${kind} requires at least two arguments, but only one was provided. Destination could not be determined`)
  const dest = inst.args[inst.args.length - 1]!
  const written = inst.args.slice(0, -1)
  const heredocs = new Map(inst.heredocs.map((h) => [h.name, h]))
  const sources: string[] = []
  const inline: { name: string; content: string; expand: boolean }[] = []
  for (const s of written) {
    const name = inst.json ? undefined : heredocName(s)
    const h = name === undefined ? undefined : heredocs.get(name)
    if (h) inline.push({ name: h.name, content: heredocData(h), expand: h.expand })
    else sources.push(s)
  }
  const chown = one(inst, flags, 'chown')
  const chmod = one(inst, flags, 'chmod')
  const base: CopyOptions = {
    ...words(scope),
    ...(chown ? { chown } : {}),
    ...(chmod ? { chmod } : {}),
    ...((flags.get('exclude') ?? []).length > 0 ? { exclude: flags.get('exclude')!.map((f) => f.value ?? '') } : {}),
    ...(bool(inst, flags, 'link') ? { link: true } : {}),
    ...(bool(inst, flags, 'parents') ? { parents: true } : {}),
  }
  if (kind === 'COPY') {
    const from = one(inst, flags, 'from')
    return b.copy(sources, dest, { ...base, ...(from ? { from: scope.input(argWord(from, scope), inst) } : {}), ...(inline.length > 0 ? { inline } : {}) })
  }
  const checksum = one(inst, flags, 'checksum')
  const unpack = flags.has('unpack') ? bool(inst, flags, 'unpack') : undefined
  const keepGitDir = bool(inst, flags, 'keep-git-dir')
  return b.add(sources, dest, { ...base, ...(keepGitDir ? { keepGitDir } : {}), ...(inline.length > 0 ? { inline } : {}), ...(checksum ? { checksum: argWord(checksum, scope) } : {}), ...(unpack !== undefined ? { unpack } : {}) })
}
