import { isAbsolute } from 'node:path'
import { ErrorCodes, InvalidArgumentError } from '../errors.js'
import { compileGraph, type CompileOptions } from '../graph/compile.js'
import type { Graph, NodeKind, SpecByKind } from '../graph/node.js'
import type { MountSpec } from '../graph/nodes/run-node.js'
import { describeStep, type StepText } from '../graph/instruction-text.js'
import type { HealthConfig } from '../oci/types.js'
import { deepFreeze } from '../util/freeze.js'
import type { BuildOptions, BuildResult, LocalBuildResult } from '../pipeline/options.js'
import type { AddOptions, CopyOptions, FromOptions, FromSource, HealthcheckOptions, RunMount, RunOptions, WordOptions } from './options.js'
import { BUILD_PLATFORM, type StageBase, type StageDef, type Step, type StepInput } from '../graph/stage.js'
import { formatPlatform, normalizePlatform, parsePlatform } from '../oci/platform.js'
import { buildDriver, triggerLowering, type TriggerLowering } from './connect.js'
import { atCaller } from './call-site.js'
import { checkOptions, shown, WORD_FIELDS, type FieldType } from './check-options.js'
import { normalizePorts, parseChmod, parseDuration, requireNonEmpty, validateEnvName, validateSignal } from './validate.js'

const SCRATCH: StageDef = deepFreeze({ base: { ref: 'scratch' }, steps: [] })

/**
 * An immutable image definition. Every method returns a new builder and leaves this one as it was,
 * so a builder can be shared, extended in several directions and used as a stage of others.
 * Nothing touches the disk until {@link ImageBuilder.build}.
 */
export class ImageBuilder {
  /**
   * The stage this builder views, made on first use. A builder made by appending a step holds only
   * that step and its predecessor (BuildKit's `State.prev`): copying and freezing the whole step
   * list on every append made a stage of n instructions cost n² (10k instructions took seconds).
   */
  #stage: StageDef | undefined
  #base: StageBase
  #platform: string | undefined
  #prev: ImageBuilder | undefined
  #step: Step | undefined
  #count: number

  /** @internal use {@link image} */
  constructor(stage: StageDef = SCRATCH) {
    this.#stage = stage
    this.#base = stage.base
    this.#platform = stage.platform
    this.#prev = undefined
    this.#step = undefined
    this.#count = stage.steps.length
  }

  /** The frozen stage definition this builder views (the same object on every call). */
  toStage(): StageDef {
    if (this.#stage) return this.#stage
    // A loop, not recursion: a chain of 100k appends is 100k builders deep.
    const tail: Step[] = []
    let b: ImageBuilder = this
    while (!b.#stage) {
      tail.push(b.#step!)
      b = b.#prev!
    }
    tail.reverse()
    const stage: StageDef = Object.freeze({ base: this.#base, steps: Object.freeze(b.#stage!.steps.concat(tail)), ...(this.#platform !== undefined ? { platform: this.#platform } : {}) })
    this.#stage = stage
    // The chain is no longer needed: let the builders before this one go.
    this.#prev = undefined
    return stage
  }

  /** Where the steps being added were written (a Dockerfile line), while {@link ImageBuilder.writtenAt} runs. */
  static #source: { readonly file: string; readonly line: number } | undefined

  /**
   * @internal Runs `add` (synchronous) with every step it adds marked as written at `source`, a
   * Dockerfile's file and line: errors of the build name it. Presentation only: ids do not change.
   */
  static writtenAt<T>(source: { readonly file: string; readonly line: number }, add: () => T): T {
    const outer = ImageBuilder.#source
    ImageBuilder.#source = Object.freeze({ file: source.file, line: source.line })
    try {
      return add()
    } finally {
      ImageBuilder.#source = outer
    }
  }

  #with<K extends NodeKind>(kind: K, spec: SpecByKind[K], deps: readonly StepInput[] = []): ImageBuilder {
    const description = describeStep({ kind, spec, deps } as StepText)
    const source = ImageBuilder.#source
    const step = deepFreeze({ kind, spec, deps: [...deps], meta: { description, ...(source ? { source } : {}) } }) as unknown as Step
    const next = new ImageBuilder()
    next.#stage = undefined
    next.#base = this.#base
    next.#platform = this.#platform
    next.#prev = this
    next.#step = step
    next.#count = this.#count + 1
    return next
  }

  /**
   * `FROM`: start from `'scratch'`, a local image (`oci-archive:PATH[:TAG]`, `oci:DIR[:TAG]`,
   * `docker-archive:PATH`) or another builder (a multi-stage build). Must come first.
   */
  from(base: FromSource | 'scratch', opts: FromOptions = {}): ImageBuilder {
    if (this.#count > 0) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'from() must be the first call on a builder; start a new image() for another stage', {})
    }
    const platform = fromPlatform(opts)
    const own = platform !== undefined ? { platform } : {}
    if (base instanceof ImageBuilder) return new ImageBuilder(deepFreeze({ base: { stage: base.toStage() }, steps: [], ...own }))
    return new ImageBuilder(deepFreeze({ base: { ref: requireNonEmpty(base, 'from() reference') }, steps: [], ...own }))
  }

  /** `COPY`: files from the build context (or another stage with `from`) into the image. */
  copy(src: string | readonly string[], dest: string, opts: CopyOptions = {}): ImageBuilder {
    checkOptions('copy() option', opts, COPY_FIELDS)
    const { sources, inline } = sourcesAndInline(src, opts, 'copy')
    if (opts.context !== undefined && (opts.from !== undefined || !isAbsolute(opts.context))) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'copy() context must be an absolute directory, and cannot be given with from', { context: opts.context })
    }
    const spec = {
      sources,
      dest: requireNonEmpty(dest, 'copy() destination'),
      fromInput: opts.from !== undefined,
      ...(opts.context !== undefined ? { context: opts.context } : {}),
      chown: opts.chown,
      chmod: chmodWord(opts),
      exclude: [...(opts.exclude ?? [])],
      link: opts.link ?? false,
      ...(opts.parents ? { parents: true as const } : {}),
      ...(inline.length > 0 ? { inline } : {}),
      ...wordMarker(opts),
    }
    return this.#with('copy', spec, opts.from === undefined ? [] : [stepInput(opts.from)])
  }

  /** `ADD`: like copy, and local tar archives are unpacked, URLs downloaded (never unpacked). */
  add(src: string | readonly string[], dest: string, opts: AddOptions = {}): ImageBuilder {
    checkOptions('add() option', opts, ADD_FIELDS)
    const { sources, inline } = sourcesAndInline(src, opts, 'add')
    if (opts.checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(opts.checksum)) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid checksum ${JSON.stringify(opts.checksum)} (sha256:<64 hex> expected)`, { checksum: opts.checksum })
    }
    const spec = {
      sources,
      dest: requireNonEmpty(dest, 'add() destination'),
      fromInput: false,
      chown: opts.chown,
      chmod: chmodWord(opts),
      exclude: [...(opts.exclude ?? [])],
      link: opts.link ?? false,
      checksum: opts.checksum,
      unpack: opts.unpack ?? true,
      ...(opts.keepGitDir ? { keepGitDir: true as const } : {}),
      ...(inline.length > 0 ? { inline } : {}),
      ...wordMarker(opts),
    }
    return this.#with('add', spec)
  }

  /**
   * `RUN`: a string runs through the image's SHELL (default `/bin/sh -c`); an array is exec form.
   * Build args in scope are in the command's environment but never stored in the image.
   */
  run(cmd: string | readonly string[], opts: RunOptions = {}): ImageBuilder {
    checkOptions('run() option', opts, RUN_FIELDS)
    for (const m of opts.mounts ?? []) checkOptions('run() mount option', m, MOUNT_FIELDS)
    const shellForm = typeof cmd === 'string'
    if (!shellForm && !Array.isArray(cmd)) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `run() needs a string (shell form) or an array of strings (exec form), got ${shown(cmd)}`, { cmd })
    const command = shellForm ? [requireNonEmpty(cmd, 'run() command')] : [...cmd]
    if (!shellForm && (command.length === 0 || command.some((c) => typeof c !== 'string'))) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'run() exec form needs a non-empty array of strings', { cmd })
    }
    const network = opts.network ?? 'default'
    if (!['default', 'none', 'host'].includes(network)) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid network mode ${JSON.stringify(network)}`, { network })
    }
    const security = opts.security ?? 'sandbox'
    if (security !== 'sandbox' && security !== 'insecure') {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid security mode ${JSON.stringify(security)} (sandbox or insecure)`, { security })
    }
    const deps: StepInput[] = []
    const mounts = (opts.mounts ?? []).map((m) => mountSpec(m, deps))
    return this.#with('run', {
      command, shellForm, network, mounts, ...(security === 'insecure' ? { security } : {}), ...(mounts.length > 0 ? wordMarker(opts) : {}),
    }, deps)
  }

  /** `ENV`: one variable, or several (a record, or `[name, value]` pairs in order) in one instruction. */
  env(key: string | Readonly<Record<string, string>> | readonly (readonly [string, string])[], value?: string, opts: WordOptions = {}): ImageBuilder {
    checkOptions('env() option', opts, WORD_FIELDS)
    const entries = typeof key === 'string' ? [[key, value] as const] : Array.isArray(key) ? key : entriesOf(key, 'env()')
    if (entries.length === 0) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'env() needs at least one variable', {})
    const vars = entries.map(([k, v]) => {
      if (opts.expand) requireNonEmpty(k, 'ENV name')
      else validateEnvName(k)
      if (typeof v !== 'string') throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `env ${k} needs a string value`, { name: k, value: v })
      return [k, v] as const
    })
    return this.#with('config', { op: 'env', vars, ...wordMarker(opts) })
  }

  /**
   * `ARG`: a build argument, set with `build({ buildArgs })`; visible to RUN, never stored in the image config.
   * Several in one instruction: a list of `{ name, value?, expand? }` (`expand` per ARG overrides `opts.expand`).
   */
  arg(name: string | readonly { readonly name: string; readonly value?: string; readonly expand?: boolean }[], defaultValue?: string, opts: WordOptions = {}): ImageBuilder {
    checkOptions('arg() option', opts, WORD_FIELDS)
    const list = typeof name === 'string' ? [{ name, value: defaultValue }] : name
    if (list.length === 0) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'arg() needs at least one name', {})
    const args = list.map((a) => {
      validateEnvName(a.name, 'ARG')
      if (a.value !== undefined && typeof a.value !== 'string') throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `ARG ${a.name} needs a string value`, { name: a.name })
      const expand = 'expand' in a && a.expand !== undefined ? a.expand : opts.expand
      return { name: a.name, value: a.value, ...(a.value !== undefined ? wordMarker({ ...opts, expand }) : {}) }
    })
    return this.#with('config', { op: 'arg', args })
  }

  /** `WORKDIR`: relative paths resolve against the previous one. */
  workdir(path: string, opts: WordOptions = {}): ImageBuilder {
    checkOptions('workdir() option', opts, WORD_FIELDS)
    return this.#with('config', { op: 'workdir', path: requireNonEmpty(path, 'workdir()'), ...wordMarker(opts) })
  }

  /** `USER`: `name`, `uid`, `name:group` or `uid:gid`. */
  user(user: string | number, opts: WordOptions = {}): ImageBuilder {
    checkOptions('user() option', opts, WORD_FIELDS)
    if (typeof user !== 'string' && typeof user !== 'number') throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `user() needs a string or a number, got ${shown(user)}`, { value: user })
    const u = requireNonEmpty(String(user), 'user()')
    return this.#with('config', { op: 'user', user: u, ...wordMarker(opts) })
  }

  /** `EXPOSE`: `80`, `'53/udp'`, `'8000-8002/tcp'` or a list of them. */
  expose(port: string | number | readonly (string | number)[], opts: WordOptions = {}): ImageBuilder {
    checkOptions('expose() option', opts, WORD_FIELDS)
    const list = Array.isArray(port) ? port : [port]
    // Marked words are normalised by the executor once expanded.
    const ports = opts.expand ? list.map((p) => requireNonEmpty(String(p), 'expose() port')) : [...new Set(list.flatMap((p) => normalizePorts(p as string | number)))]
    if (ports.length === 0) throw new InvalidArgumentError(ErrorCodes.INVALID_PORT, 'expose() needs at least one port', { port })
    return this.#with('config', { op: 'expose', ports, ...wordMarker(opts) })
  }

  /** `VOLUME` */
  volume(path: string | readonly string[], opts: WordOptions = {}): ImageBuilder {
    checkOptions('volume() option', opts, WORD_FIELDS)
    const paths = (typeof path === 'string' ? [path] : [...path]).map((p) => requireNonEmpty(p, 'volume() path'))
    if (paths.length === 0) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'volume() needs at least one path', {})
    return this.#with('config', { op: 'volume', paths, ...wordMarker(opts) })
  }

  /** `LABEL`: one label, or several (a record, or `[key, value]` pairs in order) in one instruction. */
  label(key: string | Readonly<Record<string, string>> | readonly (readonly [string, string])[], value?: string, opts: WordOptions = {}): ImageBuilder {
    checkOptions('label() option', opts, WORD_FIELDS)
    const entries = typeof key === 'string' ? [[key, value] as const] : Array.isArray(key) ? key : entriesOf(key, 'label()')
    if (entries.length === 0) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'label() needs at least one label', {})
    const labels = entries.map(([k, v]) => {
      requireNonEmpty(k, 'label key')
      if (typeof v !== 'string') throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `label ${k} needs a string value`, { key: k, value: v })
      return [k, v] as const
    })
    return this.#with('config', { op: 'label', labels, ...wordMarker(opts) })
  }

  /** `CMD`: a string is shell form (wrapped in the SHELL), an array is exec form (`[]` sets an empty CMD, as `CMD []` does). */
  cmd(cmd: string | readonly string[]): ImageBuilder {
    const { args, shellForm } = commandArgs(cmd, 'cmd()', true)
    return this.#with('config', { op: 'cmd', args, shellForm })
  }

  /** `ENTRYPOINT`: a string is shell form, an array is exec form. Resets a CMD inherited from the base, as Docker does. */
  entrypoint(cmd: string | readonly string[]): ImageBuilder {
    const { args, shellForm } = commandArgs(cmd, 'entrypoint()', true)
    return this.#with('config', { op: 'entrypoint', args, shellForm })
  }

  /** `HEALTHCHECK`, or `'none'` to disable one inherited from the base. Durations are Go-style (`30s`) or seconds. */
  healthcheck(opts: HealthcheckOptions | 'none'): ImageBuilder {
    let health: HealthConfig
    if (opts === 'none') {
      health = { Test: ['NONE'] }
    } else {
      checkOptions('healthcheck() option', opts, HEALTH_FIELDS)
      if (typeof opts.test !== 'string' && !(Array.isArray(opts.test) && opts.test.every((t) => typeof t === 'string'))) {
        throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `healthcheck() test must be a string or an array of strings, got ${shown(opts.test)}`, { option: 'test', value: opts.test })
      }
      const test = typeof opts.test === 'string' ? ['CMD-SHELL', requireNonEmpty(opts.test, 'healthcheck test')] : ['CMD', ...opts.test]
      if (test.length < 2) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'healthcheck test needs a command', {})
      if (opts.retries !== undefined && (!Number.isInteger(opts.retries) || opts.retries < 0)) {
        throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid healthcheck retries: ${opts.retries}`, { retries: opts.retries })
      }
      const dur = (v: string | number | undefined, f: string) => {
        if (v === undefined) return undefined
        const ns = parseDuration(v, f)
        // Docker refuses non-zero durations under 1ms.
        if (ns !== 0 && ns < 1e6) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `healthcheck ${f} must be at least 1ms`, { field: f, value: v })
        return ns
      }
      health = {
        Test: test,
        Interval: dur(opts.interval, 'interval'),
        Timeout: dur(opts.timeout, 'timeout'),
        StartPeriod: dur(opts.startPeriod, 'startPeriod'),
        StartInterval: dur(opts.startInterval, 'startInterval'),
        Retries: opts.retries,
      }
    }
    return this.#with('config', { op: 'healthcheck', health })
  }

  /** `STOPSIGNAL`: `SIGTERM`, `TERM` or a number. */
  stopSignal(signal: string | number, opts: WordOptions = {}): ImageBuilder {
    checkOptions('stopSignal() option', opts, WORD_FIELDS)
    const s = opts.expand ? requireNonEmpty(String(signal), 'stopSignal()') : validateSignal(String(signal))
    return this.#with('config', { op: 'stopsignal', signal: s, ...wordMarker(opts) })
  }

  /** `SHELL`: the shell that shell-form RUN, CMD and ENTRYPOINT use. */
  shell(shell: readonly string[]): ImageBuilder {
    if (!Array.isArray(shell) || shell.length === 0 || shell.some((s) => typeof s !== 'string')) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, 'shell() needs a non-empty array of strings (exec form)', { shell })
    }
    return this.#with('config', { op: 'shell', shell: [...shell] })
  }

  /** `ONBUILD`: an instruction (Dockerfile text, e.g. `'RUN make'`) stored for images built from this one. */
  onBuild(instruction: string): ImageBuilder {
    const text = requireNonEmpty(instruction, 'onBuild() instruction').trim()
    const word = text.split(/\s+/, 1)[0]!.toUpperCase()
    if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(word)) {
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${word} isn't allowed as an ONBUILD trigger`, { instruction })
    }
    return this.#with('config', { op: 'onbuild', instruction: text })
  }

  /**
   * `MAINTAINER`: sets the config's `author` field, as BuildKit does.
   * @deprecated as it is in Dockerfiles: use `label('org.opencontainers.image.authors', name)`.
   */
  maintainer(name: string): ImageBuilder {
    return this.#with('config', { op: 'maintainer', name: requireNonEmpty(name, 'maintainer()') })
  }

  /** Applies a reusable transform: `img.with(addNodeDeps)`. */
  with(fn: (b: ImageBuilder) => ImageBuilder): ImageBuilder {
    return fn(this)
  }

  /**
   * The build graph: frozen vertices in topological order, with definition keys as ids. ONBUILD
   * triggers of a base stage run after its FROM; those of a base image reference need its config
   * (`baseTriggers`, which {@link ImageBuilder.build} reads before compiling).
   */
  graph(opts: GraphOptions = {}): Graph {
    const known = opts.baseTriggers
    return compileGraph(this.toStage(), {
      ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}),
      ...(opts.stageNames ? { stageNames: opts.stageNames } : {}),
      ...(opts.platform ? { platform: opts.platform } : {}),
      onBuild: { triggersOf: (ref) => known?.get(ref) ?? [], lower: opts.lowerTriggers ?? triggerLowering() },
    })
  }

  /**
   * Builds the image and writes it to `opts.output`. Built by the local driver (no `driver` option),
   * the result has every field; another driver fills what its engine reports.
   */
  build(opts?: BuildOptions & { readonly driver?: undefined }): Promise<LocalBuildResult>
  build(opts?: BuildOptions): Promise<BuildResult>
  build(opts: BuildOptions = {}): Promise<BuildResult> {
    try {
      return buildDriver().build(this, opts)
    } catch (e) {
      return Promise.reject(e)
    }
  }
}

/**
 * Every method that takes arguments reports a mistake at the caller's line (call-site.ts); `with`,
 * `graph` and `build` are left alone: what fails in them is no argument of the call at hand.
 */
const CHECKED = ['from', 'copy', 'add', 'run', 'env', 'arg', 'workdir', 'user', 'expose', 'volume', 'label', 'cmd', 'entrypoint', 'healthcheck', 'stopSignal', 'shell', 'onBuild', 'maintainer'] as const
for (const name of CHECKED) {
  const method = ImageBuilder.prototype[name] as (...args: unknown[]) => ImageBuilder
  Object.defineProperty(ImageBuilder.prototype, name, {
    ...Object.getOwnPropertyDescriptor(ImageBuilder.prototype, name),
    value: { [name](this: ImageBuilder, ...args: unknown[]): ImageBuilder {
      try {
        return method.apply(this, args)
      } catch (e) {
        throw atCaller(e, name)
      }
    } }[name],
  })
}

const INLINE_FIELDS: Readonly<Record<string, FieldType>> = { name: 'string', content: 'string', expand: 'boolean' }
const COPY_FIELDS: Readonly<Record<string, FieldType>> = {
  ...WORD_FIELDS, from: 'stage', context: 'string', chown: 'string', chmod: 'string|number', exclude: 'string[]', link: 'boolean', parents: 'boolean', inline: 'list',
}
const ADD_FIELDS: Readonly<Record<string, FieldType>> = {
  ...WORD_FIELDS, chown: 'string', chmod: 'string|number', exclude: 'string[]', link: 'boolean', checksum: 'string', keepGitDir: 'boolean', unpack: 'boolean', inline: 'list',
}
const RUN_FIELDS: Readonly<Record<string, FieldType>> = { ...WORD_FIELDS, network: 'string', security: 'string', mounts: 'list' }
const MOUNT_FIELDS: Readonly<Record<string, FieldType>> = {
  type: 'string', target: 'string', id: 'string', sharing: 'string', readonly: 'boolean', mode: 'number', uid: 'number', gid: 'number',
  env: 'string', required: 'boolean', source: 'string', from: 'stage', readwrite: 'boolean', size: 'number',
}
const HEALTH_FIELDS: Readonly<Record<string, FieldType>> = {
  interval: 'string|number', timeout: 'string|number', startPeriod: 'string|number', startInterval: 'string|number', retries: 'number',
}

function entriesOf(record: unknown, what: string): (readonly [string, unknown])[] {
  if (!record || typeof record !== 'object') {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${what} needs a name and a value, a record or [name, value] pairs, got ${shown(record)}`, { value: record })
  }
  return Object.entries(record)
}

export interface GraphOptions extends Pick<CompileOptions, 'buildArgs' | 'stageNames' | 'platform'> {
  /** ONBUILD triggers in the configs of base image references, by reference. */
  readonly baseTriggers?: ReadonlyMap<string, readonly string[]>
  /**
   * ONBUILD trigger text as steps (triggers of a base stage, and `baseTriggers`).
   * @default each parsed and lowered as a Dockerfile instruction (the lowering the package entry connects)
   */
  readonly lowerTriggers?: TriggerLowering
}

/** `from()`'s platform: {@link BUILD_PLATFORM} as it is, anything else checked and normalised (`linux/arm64/v8` is `linux/arm64`). */
function fromPlatform(opts: FromOptions): string | undefined {
  if (!opts || typeof opts !== 'object') throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `from() options must be an object, got ${shown(opts)}`, { value: opts })
  const p: unknown = opts.platform
  if (p === undefined || p === BUILD_PLATFORM) return p
  if (typeof p !== 'string') throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `from() platform must be os/arch[/variant] or BUILD_PLATFORM, got ${shown(p)}`, { value: p })
  return formatPlatform(normalizePlatform(parsePlatform(p)))
}

/**
 * Whether `x` is an image builder. A builder from another copy of the package (a build script's own
 * node_modules) counts too: it has the same methods, only not this class.
 */
export function isImageBuilder(x: unknown): x is ImageBuilder {
  return x instanceof ImageBuilder || (!!x && typeof x === 'object' && typeof (x as ImageBuilder).toStage === 'function' && typeof (x as ImageBuilder).graph === 'function')
}

/** Starts an image definition (from scratch until {@link ImageBuilder.from} is called). */
export function image(): ImageBuilder {
  return new ImageBuilder()
}

/** `FROM scratch` */
export function scratch(): ImageBuilder {
  return new ImageBuilder()
}

/** The spec fields that mark its words for expansion (absent for literal words, so literal specs keep their keys). */
function wordMarker(opts: WordOptions): { expand?: true; escapeToken?: '`' } {
  if (!opts.expand) return {}
  return opts.escapeToken === '`' ? { expand: true, escapeToken: '`' } : { expand: true }
}

/** A literal chmod is checked and normalised now; a marked one after expansion. */
function chmodWord(opts: CopyOptions | AddOptions): string | undefined {
  if (opts.chmod === undefined) return undefined
  if (opts.expand && typeof opts.chmod === 'string') return requireNonEmpty(opts.chmod, 'chmod')
  return parseChmod(opts.chmod).toString(8)
}

function stepInput(from: FromSource): StepInput {
  if (from instanceof ImageBuilder) return { stage: from.toStage() }
  return { ref: requireNonEmpty(from, 'from reference') }
}

/** Sources, and files given by their content (heredocs); with inline files the source list may be empty. */
function sourcesAndInline(src: string | readonly string[], opts: CopyOptions | AddOptions, what: string) {
  for (const f of opts.inline ?? []) checkOptions(`${what}() inline file`, f, INLINE_FIELDS)
  const inline = (opts.inline ?? []).map((f) => ({
    name: requireNonEmpty(f.name, 'inline file name'),
    data: typeof f.content === 'string' ? f.content : String(f.content),
    ...(f.expand && opts.expand ? { expand: true as const } : {}),
  }))
  const sources = inline.length > 0 && (typeof src === 'string' ? [src] : src).length === 0 ? [] : sourceList(src, what)
  return { sources, inline }
}

function sourceList(src: string | readonly string[], what: string): string[] {
  const list = typeof src === 'string' ? [src] : [...src]
  if (list.length === 0) throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${what}() needs at least one source`, {})
  return list.map((s) => requireNonEmpty(s, `${what}() source`))
}

function commandArgs(cmd: string | readonly string[], what: string, allowEmpty = false): { args: string[]; shellForm: boolean } {
  if (typeof cmd === 'string') return { args: [requireNonEmpty(cmd, what)], shellForm: true }
  if (!Array.isArray(cmd) || cmd.some((c) => typeof c !== 'string') || (!allowEmpty && cmd.length === 0)) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${what} needs a string (shell form) or an array of strings (exec form)`, { cmd })
  }
  return { args: [...cmd], shellForm: false }
}

function mountSpec(m: RunMount, deps: StepInput[]): MountSpec {
  const target = m.type === 'secret' || m.type === 'ssh' ? '' : requireNonEmpty(m.target ?? '', `${m.type} mount target`)
  switch (m.type) {
    case 'cache':
      return { type: 'cache', target, id: m.id ?? target, sharing: m.sharing ?? 'shared', readonly: m.readonly ?? false, mode: m.mode, uid: m.uid, gid: m.gid }
    case 'secret':
      return {
        type: 'secret',
        id: requireNonEmpty(m.id, 'secret mount id'),
        target: m.target ?? (m.env ? '' : `/run/secrets/${m.id}`),
        env: m.env,
        required: m.required ?? false,
        mode: m.mode ?? 0o400,
        uid: m.uid ?? 0,
        gid: m.gid ?? 0,
      }
    case 'bind': {
      let fromInput: number | undefined
      if (m.from !== undefined) {
        deps.push(stepInput(m.from))
        fromInput = deps.length // inputs[0] is the parent state
      }
      return { type: 'bind', target, source: m.source ?? '.', fromInput, readwrite: m.readwrite ?? false }
    }
    case 'tmpfs':
      return { type: 'tmpfs', target, size: m.size }
    case 'ssh':
      return {
        type: 'ssh',
        id: m.id === undefined ? 'default' : requireNonEmpty(m.id, 'ssh mount id'),
        target: m.target ?? '',
        required: m.required ?? false,
        mode: m.mode ?? 0o600,
        uid: m.uid ?? 0,
        gid: m.gid ?? 0,
      }
    default:
      throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `unknown mount type ${JSON.stringify((m as { type: unknown }).type)}`, { mount: m })
  }
}
