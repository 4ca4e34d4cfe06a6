/**
 * `toDockerfile`: a builder (and every stage it reads from) as Dockerfile text that BuildKit,
 * `docker build`, buildah and this project's importer all build to the same image. Instruction text
 * comes from graph/instruction-text, the same table the history strings and step descriptions use.
 */
import type { ImageBuilder } from '../builder/image-builder.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { lexerWord, notRepresentable } from '../graph/dockerfile-words.js'
import { DEFAULT_SHELL, dockerfileText, fromText, type TextContext } from '../graph/instruction-text.js'
import type { StageDef, StepInput } from '../graph/stage.js'
import { MAX_LINE_BYTES } from './parser-lines.js'
import { parseDockerfile } from './parser.js'
import { collectStages, type StageEntry } from './print-stages.js'

export interface PrintOptions {
  /**
   * What to do with a local image reference (`oci-archive:PATH`, `oci:DIR`, `docker-archive:PATH`).
   * buildah and podman read these transports in FROM as written, and so does imagesmith's own
   * `build -f`; `docker build` (BuildKit) does not. `'comment'` (the default) writes the reference
   * as it is under a comment saying so, because rewriting it would break the builders that do read
   * it and lose the user's intent; `'error'` refuses with `NOT_REPRESENTABLE`, for output that must
   * build with docker too.
   * @default 'comment'
   */
  readonly localRefs?: 'comment' | 'error'
  /**
   * Write `# syntax=docker/dockerfile:1` when the file uses syntax newer than the frontend built
   * into older engines (heredocs, `--link`, `--exclude`, `--start-interval`, `--checksum`).
   * @default true
   */
  readonly syntaxDirective?: boolean
  /**
   * Names for stages, e.g. `fromDockerfile(…).stages`: a stage printed for one of these builders is
   * called by its key (numeric keys are ignored). Others are `stage-1`, `stage-2`, …
   */
  readonly names?: Readonly<Record<string, ImageBuilder>>
}

/** Local image transports: this project's syntax, not an image reference Docker knows. */
const LOCAL_REF = /^(oci-archive|oci|docker-archive|oci-layout):/

/** Syntax that the frontend built into docker 20.10 does not parse (it needs the dockerfile:1 frontend). */
const NEWER_SYNTAX = /^(?:RUN|COPY|ADD)\b[^\n]*<<|^(?:COPY|ADD)\b[^\n]*(?:--link\b|--exclude=)|^HEALTHCHECK\b[^\n]*--start-interval=|^ADD\b[^\n]*--checksum=/m

/**
 * Prints the Dockerfile of a builder. Stages it reads from come first (each once, even when it is
 * reached by several paths or was defined twice with the same steps), named `stage-1`, `stage-2`, …
 * or by their own `name`; the builder itself is the last stage. Throws `NOT_REPRESENTABLE` for a
 * value no Dockerfile can hold (a line break in an ENV value, for one).
 */
export function toDockerfile(builder: ImageBuilder | StageDef, opts: PrintOptions = {}): string {
  const target = 'toStage' in builder ? builder.toStage() : builder
  const named = new Map<StageDef, string>()
  for (const [k, b] of Object.entries(opts.names ?? {})) if (!/^\d+$/.test(k) && !named.has(b.toStage())) named.set(b.toStage(), k)
  const { order, byDef } = collectStages(target, (def) => named.get(def))
  const refOf = (ref: string, where: string): string => {
    if (!LOCAL_REF.test(ref)) return ref
    if (opts.localRefs === 'error') {
      throw new ImagesmithError(ErrorCodes.NOT_REPRESENTABLE, `${where} reads the local image ${ref}, which docker build cannot: load and tag it, then refer to it by name`, { ref })
    }
    return ref
  }
  // A bare image name in --from would read back as a stage name (BuildKit looks stages up first):
  // its explicit `:latest` tag names the same image.
  // Words read under `# escape=\`` keep it (a Windows Dockerfile's paths are full of backslashes).
  const escape = order.some((e) => e.def.steps.some(usesBacktick)) ? '`' : '\\'
  // Image references in `--from` are expanded from the ARGs when read: the lexer's characters escaped.
  const inputName = (dep: StepInput): string =>
    'ref' in dep ? lexerWord(refOf(/[:/@]/.test(dep.ref) ? dep.ref : `${dep.ref}:latest`, '--from'), escape) : byDef.get(dep.stage)!.name
  const blocks: string[] = []
  const shells = new Map<StageEntry, readonly string[]>()
  for (const e of order) {
    const lines: string[] = []
    const base = e.def.base
    let shell: readonly string[] = DEFAULT_SHELL
    let from: string
    if ('ref' in base) {
      from = fromWord(refOf(base.ref, 'FROM'), escape)
      if (LOCAL_REF.test(base.ref)) lines.push(localRefComment(base.ref))
    } else {
      const parent = byDef.get(base.stage)!
      from = parent.name
      shell = shells.get(parent) ?? DEFAULT_SHELL
    }
    lines.push(fromText(from, e.name === '' ? undefined : e.name))
    for (const step of e.def.steps) {
      for (const dep of step.deps) {
        if ('ref' in dep && LOCAL_REF.test(dep.ref)) lines.push(localRefComment(dep.ref))
      }
      const ctx: TextContext = { strict: true, input: inputName, shell, escape }
      const text = withinLineLimit(dockerfileText(step, ctx), escape)
      if (step.kind === 'run' || step.kind === 'copy' || step.kind === 'add') checkHeredocs(text, escape)
      lines.push(text)
      const spec = step.spec as { op?: string; shell?: readonly string[] }
      if (step.kind === 'config' && spec.op === 'shell' && spec.shell) shell = spec.shell
    }
    shells.set(e, shell)
    blocks.push(lines.join('\n'))
  }
  const text = `${blocks.join('\n\n')}\n`
  const directive = opts.syntaxDirective !== false && NEWER_SYNTAX.test(text) ? '# syntax=docker/dockerfile:1\n' : ''
  return (escape === '`' ? '# escape=`\n' : '') + directive + text
}

/**
 * An image reference as FROM's word: it is expanded from the global ARGs when read, so the lexer's
 * characters are escaped (`hello'$x'` was read as `hello$x`), and a leading `--` would be a flag.
 * The line is split on blanks before anything else, so a reference holding one has no spelling.
 */
function fromWord(ref: string, escape: '\\' | '`'): string {
  if (/[\t\v\f\r ]/.test(ref)) throw notRepresentable(`FROM ${JSON.stringify(ref)}: an image reference with a blank has no Dockerfile spelling`, { ref })
  const w = lexerWord(ref, escape)
  return w.startsWith('--') ? `${escape}${w}` : w
}

/**
 * A RUN, COPY or ADD line is also read for heredocs, as the shell lexer splits it (quotes in one
 * word can hide a `<<` in the next): it must read back as this one instruction, its heredocs
 * (if any) closed by the bodies written after it. Otherwise it has no spelling.
 */
function checkHeredocs(text: string, escape: '\\' | '`'): void {
  const first = text.split('\n', 1)[0]!
  if (!first.includes('<<')) return
  let count: number
  try {
    count = parseDockerfile(`${escape === '`' ? '# escape=`\n' : ''}${text}\n`, { strict: false }).instructions.length
  } catch {
    count = 0
  }
  if (count !== 1) throw notRepresentable(`${JSON.stringify(first.slice(0, 200))} would not read back as written: its << words and quotes open other heredocs`, { line: first })
}

/** Where a long instruction line is cut: well under the parser's limit in bytes (3 per UTF-16 unit at most). */
const WRAP_UNITS = 16_384

/**
 * An instruction whose line is longer than the parser accepts (BuildKit's scanner stops at 64 KiB
 * a physical line; a continued line read back as one can be longer), continued over several lines
 * as the parser joins them: the escape character ends each piece, and the next is appended as it
 * is. A piece may not end in the escape character (it would be escaped) nor split a surrogate
 * pair, and the next may not start as a comment or be blank (the parser would drop it). Heredoc
 * bodies (the lines after the first) are read raw and cannot be continued.
 */
function withinLineLimit(text: string, escape: '\\' | '`'): string {
  const nl = text.indexOf('\n')
  const first = nl < 0 ? text : text.slice(0, nl)
  const rest = nl < 0 ? '' : text.slice(nl)
  for (const body of rest.split('\n')) {
    if (Buffer.byteLength(body) + 1 > MAX_LINE_BYTES) throw notRepresentable(`a heredoc line of ${Buffer.byteLength(body)} bytes is longer than a Dockerfile line may be (${MAX_LINE_BYTES})`, { bytes: Buffer.byteLength(body) })
  }
  if (first.length * 3 + 2 <= MAX_LINE_BYTES || Buffer.byteLength(first) + 2 <= MAX_LINE_BYTES) return text
  const pieces: string[] = []
  let start = 0
  while (first.length - start > WRAP_UNITS) {
    let cut = start + WRAP_UNITS
    const fits = (i: number): boolean => {
      const before = first.charCodeAt(i - 1)
      const next = first.slice(i, i + 1)
      return first[i - 1] !== escape && !(before >= 0xd800 && before <= 0xdbff) && /\S/.test(next) && next !== '#'
    }
    while (cut > start + 1 && !fits(cut)) cut--
    if (cut === start + 1) throw notRepresentable('an instruction line longer than a Dockerfile line may be has no place to be continued', { length: first.length })
    pieces.push(first.slice(start, cut))
    start = cut
  }
  pieces.push(first.slice(start))
  return pieces.join(`${escape}\n`) + rest
}

function localRefComment(ref: string): string {
  return `# ${ref} is a local image (buildah, podman and imagesmith read it; for docker build, load it and use its name)`
}

function usesBacktick(step: { readonly spec: unknown }): boolean {
  const spec = step.spec as { escapeToken?: string; args?: readonly { escapeToken?: string }[] }
  return spec.escapeToken === '`' || (Array.isArray(spec.args) && spec.args.some((a) => a?.escapeToken === '`'))
}
