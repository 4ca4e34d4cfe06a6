/**
 * Dockerfile → builders, with the semantics of today's `docker build` (BuildKit's Dockerfile
 * frontend): one builder per stage, global ARGs before the first FROM, each stage's own ARG scope,
 * `--build-arg` overrides and the predefined platform ARGs. Words are expanded where BuildKit
 * expands them (graph/expansion.ts): FROM's reference and `--platform` here from the global ARGs,
 * the rest by the executors against the stage's environment.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { basename, resolve } from 'node:path'
import { image, ImageBuilder } from '../builder/image-builder.js'
import type { FromSource } from '../builder/options.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Platform } from '../oci/types.js'
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform } from '../oci/platform.js'
import type { BuildOptions, BuildResult, LocalBuildResult } from '../pipeline/options.js'
import { contextName, namedContexts } from '../context/named-contexts.js'
import { processWord } from '../shell/expand.js'
import { ExpansionBudget } from '../shell/limits.js'
import type { Dockerfile, Instruction } from './ast.js'
import { atInstruction, instructionError } from './lower-errors.js'
import { lowerInstruction, type LowerScope } from './lower-instruction.js'
import { parseDockerfile } from './parser.js'

export interface FromDockerfileOptions {
  /** `--build-arg` values: override ARG defaults (global and in stages). */
  readonly buildArgs?: Readonly<Record<string, string>>
  /** The stage to build (`--target`), by name. @default the last stage */
  readonly target?: string
  /** Target platform `os/arch[/variant]`: sets TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT. @default the host's */
  readonly platform?: string
  /** The build context `build()` uses. @default the current directory */
  readonly contextDir?: string
  /** The file name used in messages when Dockerfile text is given. @default 'Dockerfile' */
  readonly filename?: string
  /**
   * Named contexts (`--build-context`; see {@link BuildOptions.buildContexts}): `COPY --from=NAME` may
   * then name one that is no stage; `build()` passes them on.
   */
  readonly buildContexts?: Readonly<Record<string, string>>
}

export interface DockerfileImport {
  /** Every stage by its (lower-cased) name and by its index (`'0'`, `'1'`, …). */
  readonly stages: Readonly<Record<string, ImageBuilder>>
  /** Every stage in order. */
  readonly stageList: readonly ImageBuilder[]
  /** The stage chosen by `target` (or the last one). */
  readonly target: ImageBuilder
  /** The `<Dockerfile>.dockerignore` beside the Dockerfile, when there is one: it replaces the context's `.dockerignore`. */
  readonly dockerignore?: string
  /** The target platform the ARGs were set for. */
  readonly platform: string
  /** The parsed file. */
  readonly dockerfile: Dockerfile
  /** The target and stages for another target platform (the file imported again with its automatic ARGs): `BuildOptions.targetFor`. */
  readonly targetFor: (platform: string) => { readonly target: ImageBuilder; readonly stages: Readonly<Record<string, ImageBuilder>> }
  /** Builds the target as `docker build` would: this platform, context and ignore file unless `opts` says otherwise. */
  build(opts?: BuildOptions & { readonly driver?: undefined }): Promise<LocalBuildResult>
  build(opts?: BuildOptions): Promise<BuildResult>
}

/** The ARGs BuildKit defines for every build (only in global scope until a stage declares them). */
export function platformArgs(target: Platform, build: Platform = hostPlatform()): Map<string, string> {
  return new Map([
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
  ])
}

/** Dockerfile text, or the path of a Dockerfile (a string without a line break naming an existing file). */
function readInput(textOrPath: string): { text: string; path?: string } {
  if (!/[\r\n]/.test(textOrPath) && existsSync(textOrPath) && statSync(textOrPath).isFile()) {
    return { text: readFileSync(textOrPath, 'utf8'), path: resolve(textOrPath) }
  }
  return { text: textOrPath }
}

/**
 * The most instructions a Dockerfile may hold. BuildKit has no such bound; ours keeps import (all
 * synchronous: a Ctrl-C waits for it) to a few seconds: import is linear, 100,000 instructions take
 * about 1.5 s. Real Dockerfiles hold tens to hundreds.
 */
export const MAX_DOCKERFILE_INSTRUCTIONS = 200_000

interface StageInfo {
  readonly name?: string
  readonly builder: ImageBuilder
  readonly line: number
}

/**
 * Turns a Dockerfile into builders that build exactly what it describes. `textOrPath` is the
 * Dockerfile's text or its path; with a path, `<path>.dockerignore` is looked for beside it.
 */
export function fromDockerfile(textOrPath: string, opts: FromDockerfileOptions = {}): DockerfileImport {
  const input = readInput(textOrPath)
  const filename = opts.filename ?? (input.path ? basename(input.path) : 'Dockerfile')
  const df = parseDockerfile(input.text, { filename })
  if (df.instructions.length > MAX_DOCKERFILE_INSTRUCTIONS) {
    const at = df.instructions[MAX_DOCKERFILE_INSTRUCTIONS]!
    throw instructionError(at, ErrorCodes.DOCKERFILE_SYNTAX, `${filename} has more than ${MAX_DOCKERFILE_INSTRUCTIONS} instructions`, {
      filename,
      limit: MAX_DOCKERFILE_INSTRUCTIONS,
      instructions: df.instructions.length,
    })
  }
  const platform = parsePlatform(opts.platform)
  const buildArgs = opts.buildArgs ?? {}
  const auto = platformArgs(platform)
  const escapeToken = df.escapeToken
  const contexts = namedContexts(opts.buildContexts)
  const isContext = (name: string): boolean => {
    try {
      return contexts?.has(contextName(name)) ?? false
    } catch {
      return false
    }
  }

  // Global scope: the platform ARGs, then the ARGs before the first FROM (each default sees the ones before it).
  // Looked up, never copied: a copy per instruction is quadratic in a Dockerfile of many ARGs.
  const globals = new Map<string, string | undefined>()
  const globalEnv = (name: string): string | undefined => globals.get(name) ?? auto.get(name)
  // One budget for every word of the file: many lines each near the bounds stop as one long line would.
  const budget = new ExpansionBudget()
  const word = (w: string, env: (name: string) => string | undefined, inst: Instruction): string =>
    atInstruction(inst, () => processWord(w, env, { escapeToken, budget }).value)

  const stages: StageInfo[] = []
  const stagesByName = new Map<string, StageInfo>()
  const stageNames = new Set<string>()
  for (const i of df.instructions) {
    if (i.keyword !== 'FROM') continue
    const n = fromStageName(i)
    if (n !== undefined) stageNames.add(n.toLowerCase())
  }
  let current: { info: StageInfo; name?: string; line: number; args: Map<string, string> } | undefined
  const finish = (): void => {
    if (!current) return
    stages.push({ ...current.info })
    if (current.info.name !== undefined && !stagesByName.has(current.info.name)) stagesByName.set(current.info.name, stages[stages.length - 1]!)
  }

  const findStage = (name: string, inst: Instruction): StageInfo | undefined => {
    const lower = name.toLowerCase()
    const byName = stagesByName.get(lower)
    if (byName) return byName
    if (/^\d+$/.test(name)) {
      const s = stages[Number(name)]
      if (!s) throw instructionError(inst, ErrorCodes.UNDEFINED_STAGE, `stage ${name} is not defined before this instruction (${stages.length} before it)`, { stage: name })
      return s
    }
    return undefined
  }

  const laterStage = (name: string): boolean => stageNames.has(name.toLowerCase())

  for (const inst of df.instructions) {
    if (inst.keyword === 'FROM') {
      finish()
      current = { ...startStage(inst), line: inst.range.start.line }
      continue
    }
    if (!current) {
      if (inst.keyword !== 'ARG') throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `${inst.keyword} before the first FROM: only ARG may come before it`)
      for (const w of inst.args) {
        const i = w.indexOf('=')
        const name = i < 0 ? w : w.slice(0, i)
        const value = Object.hasOwn(buildArgs, name)
          ? buildArgs[name]
          : i >= 0 ? word(w.slice(i + 1), globalEnv, inst) : auto.get(name)
        globals.set(name, value)
      }
      continue
    }
    const stage = current
    const scope: LowerScope = {
      escapeToken,
      scratch: image,
      args: (name) => stage.args.get(name) ?? globalEnv(name),
      budget,
      input: (name, at) => {
        const s = findStage(name, at)
        if (s) return s.builder
        if (laterStage(name)) throw instructionError(at, ErrorCodes.UNDEFINED_STAGE, `stage ${JSON.stringify(name)} is defined after this instruction`, { stage: name })
        // An image reference names a registry, tag, digest or transport; a bare word is a stage name mistyped.
        if (/[:/@]/.test(name) || isContext(name)) return name
        throw instructionError(at, ErrorCodes.UNDEFINED_STAGE, `no stage named ${JSON.stringify(name)} (write a tagged image reference, e.g. ${name}:latest, to copy from an image)`, { stage: name })
      },
      arg: (name, defaultWord) => {
        // A stage ARG: --build-arg, else its own default (expanded at build time), else the global ARG's value, else a platform ARG.
        let decl: { name: string; value?: string; expand?: boolean }
        if (Object.hasOwn(buildArgs, name)) decl = { name, value: buildArgs[name]!, expand: false }
        // A default with nothing to expand (no `$`: quotes and escapes only) is stored as its value,
        // literal, like a value from --build-arg or a global ARG: each of them prints as a quoted word
        // that reads back to that same literal step, so the vertex keys survive a round trip.
        else if (defaultWord !== undefined) decl = { name, ...argDefault(defaultWord) }
        else if (globals.has(name)) decl = globals.get(name) === undefined ? { name } : { name, value: globals.get(name)!, expand: false }
        else if (auto.has(name)) decl = { name, value: auto.get(name)!, expand: false }
        else decl = { name }
        // What lowering-time words (`--from`, `--mount`) can see of it.
        if (decl.value !== undefined) {
          stage.args.set(name, decl.expand ? processWord(decl.value, (n) => stage.args.get(n) ?? globalEnv(n), { escapeToken, budget }).value : decl.value)
        } else stage.args.delete(name)
        return decl
      },
    }
    // Errors of the build name the Dockerfile line the step came from, as parse errors do.
    const builder = stage.info.builder
    stage.info = { ...stage.info, builder: ImageBuilder.writtenAt({ file: filename, line: inst.range.start.line }, () => lowerInstruction(builder, inst, scope)) }
  }
  finish()
  if (stages.length === 0) throw new ImagesmithError(ErrorCodes.DOCKERFILE_SYNTAX, `${filename} has no FROM instruction`, { filename })

  function argDefault(defaultWord: string): { value: string; expand: boolean } {
    if (!defaultWord.includes('$')) {
      try {
        return { value: processWord(defaultWord, () => undefined, { escapeToken, budget }).value, expand: false }
      } catch {
        // Malformed (an open quote): kept as written, to fail when the step runs, as it does in BuildKit.
      }
    }
    return { value: defaultWord, expand: true }
  }

  function startStage(inst: Instruction): { info: StageInfo; args: Map<string, string> } {
    return atInstruction(inst, () => {
      const { image: imageWord, stageName } = fromParts(inst)
      for (const f of inst.flags) if (f.name !== 'platform') throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `unknown flag: --${f.name}`, { flag: f.name })
      const platformFlag = inst.flags.find((f) => f.name === 'platform')
      // `FROM --platform=$BUILDPLATFORM`: the stage runs natively, the same for every target platform.
      let stagePlatform: string | undefined
      if (platformFlag) {
        const p = word(platformFlag.value ?? '', globalEnv, inst)
        let parsed: Platform
        try {
          parsed = normalizePlatform(parsePlatform(p))
        } catch {
          throw instructionError(inst, ErrorCodes.UNSUPPORTED_PLATFORM, `FROM --platform=${platformFlag.value ?? ''}: invalid platform ${JSON.stringify(p)} (os/arch[/variant] expected)`, { platform: p })
        }
        // The build's own platform stays implicit: the stage's vertices are those of a plain FROM.
        if (formatPlatform(parsed) !== formatPlatform(normalizePlatform(platform))) stagePlatform = formatPlatform(parsed)
      }
      const ref = word(imageWord, globalEnv, inst)
      if (ref === '') throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `FROM ${imageWord} expands to an empty image reference`, { word: imageWord })
      const name = stageName?.toLowerCase()
      if (name !== undefined) {
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `invalid stage name ${JSON.stringify(stageName)}`, { stage: stageName })
        if (stagesByName.has(name)) throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, `duplicate stage name ${JSON.stringify(stageName)}`, { stage: stageName })
      }
      const earlier = findStage(ref, inst)
      const base: FromSource = earlier ? earlier.builder : ref
      const builder = image().from(base, stagePlatform !== undefined ? { platform: stagePlatform } : {})
      return { info: { ...(name !== undefined ? { name } : {}), builder, line: inst.range.start.line }, args: new Map() }
    })
  }

  const byKey: Record<string, ImageBuilder> = {}
  stages.forEach((s, i) => {
    byKey[String(i)] = s.builder
    if (s.name !== undefined) byKey[s.name] = s.builder
  })
  let target = stages[stages.length - 1]!.builder
  if (opts.target !== undefined) {
    const t = stages.find((s) => s.name === opts.target!.toLowerCase())
    if (!t) {
      const names = stages.flatMap((s) => (s.name ? [s.name] : []))
      throw new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `target stage ${JSON.stringify(opts.target)} could not be found (stages: ${names.join(', ') || 'none named'})`, { stage: opts.target })
    }
    target = t.builder
  }
  const ignore = input.path ? `${input.path}.dockerignore` : undefined
  const dockerignore = ignore && existsSync(ignore) ? ignore : undefined
  const platformText = formatPlatform(platform)
  // Each target platform has its own automatic ARGs: the file is imported again for each.
  const targetFor = (p: string): { target: ImageBuilder; stages: Readonly<Record<string, ImageBuilder>> } => {
    const again = fromDockerfile(input.text, { ...opts, filename, platform: p })
    return { target: again.target, stages: again.stages }
  }
  return Object.freeze({
    stages: Object.freeze(byKey),
    stageList: Object.freeze(stages.map((s) => s.builder)),
    target,
    ...(dockerignore ? { dockerignore } : {}),
    platform: platformText,
    dockerfile: df,
    targetFor,
    build: ((o: BuildOptions = {}) =>
      target.build({
        ...(o.platforms === undefined && !o.platform?.includes(',') ? { platform: platformText } : {}),
        targetFor,
        ...(opts.contextDir !== undefined ? { context: opts.contextDir } : {}),
        ...(dockerignore ? { dockerignore } : {}),
        stages: byKey,
        ...(opts.buildContexts ? { buildContexts: opts.buildContexts } : {}),
        ...o,
      })) as DockerfileImport['build'],
  })
}

/** The stage name a FROM declares, if it is well-formed (its errors are reported when it is lowered). */
function fromStageName(inst: Instruction): string | undefined {
  const a = inst.args
  return a.length === 3 && a[1]!.toLowerCase() === 'as' ? a[2]! : undefined
}

/** `FROM [--platform=…] image [AS name]` from the instruction's words. */
function fromParts(inst: Instruction): { image: string; stageName?: string } {
  const a = inst.args
  if (a.length === 1) return { image: a[0]! }
  if (a.length === 3 && a[1]!.toLowerCase() === 'as') return { image: a[0]!, stageName: a[2]! }
  throw instructionError(inst, ErrorCodes.DOCKERFILE_SYNTAX, 'FROM requires either one or three arguments (FROM image [AS name])')
}
