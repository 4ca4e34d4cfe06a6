/**
 * Writes a builder graph (as the Dockerfile importer made it) as an idiomatic TypeScript module
 * with ts-morph: one const per stage inside a function that takes the build args as a typed object,
 * the Dockerfile's comments above the calls they preceded, and the target as the default export.
 * The calls are made to produce the very same steps (see calls.ts), so the module builds the same
 * image digest as the Dockerfile.
 *
 * This file (and the codegen entry point) is the only place ts-morph is loaded.
 */
import { IndentationText, Project, QuoteKind, ts, VariableDeclarationKind } from 'ts-morph'
import type { Dockerfile, Instruction } from '../dockerfile/ast.js'
import { collectStages, type StageEntry } from '../dockerfile/print-stages.js'
import type { StageDef, StepInput } from '../graph/stage.js'
import { processWord } from '../shell/expand.js'
import { stepCall, str, type CallContext } from './calls.js'

export interface GenerateInput {
  /** The target stage (everything it reads from is written too). */
  readonly target: StageDef
  /** Stage names as the Dockerfile wrote them (`FROM … AS name`), by stage definition. */
  readonly names?: ReadonlyMap<StageDef, string>
  /** Every stage in Dockerfile order (the importer's `stageList`): all become consts, and comments match by position. */
  readonly stageList?: readonly StageDef[]
  /** The parsed Dockerfile: its comments and ARG names carry over. */
  readonly dockerfile?: Dockerfile
  /** Written as the module's first comment, e.g. where it came from. */
  readonly header?: string
  /** Module to import the builder from. @default 'imagesmith' */
  readonly importFrom?: string
}

const RESERVED = new Set(('break case catch class const continue debugger default delete do else enum export extends false finally for function if import in ' +
  'instanceof new null return super switch this throw true try typeof var void while with as implements interface let package private protected public ' +
  'static yield await args image stages target BuildArgs undefined').split(' '))

/** `build-env` → `buildEnv`; unique, never a keyword or a name the module uses itself. */
function identifier(name: string, taken: Set<string>): string {
  let id = name.replace(/[^A-Za-z0-9_$]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))
  if (id === '' || /^\d/.test(id)) id = `stage${id}`
  if (RESERVED.has(id)) id = `${id}Stage`
  let out = id
  for (let i = 2; taken.has(out); i++) out = `${id}${i}`
  taken.add(out)
  return out
}

/** A comment as `//` lines: line comments cannot be closed early by the text they hold. */
function commentLines(text: readonly string[]): string[] {
  return text.map((t) => (t === '' ? '//' : `// ${t}`))
}

/** The instructions of each stage in the Dockerfile (FROM first), in file order. */
function astStages(df: Dockerfile | undefined): Instruction[][] {
  const out: Instruction[][] = []
  for (const inst of df?.instructions ?? []) {
    if (inst.keyword === 'FROM') out.push([inst])
    else out[out.length - 1]?.push(inst)
  }
  return out
}

/** Names of every ARG the Dockerfile declares (global ones included), in order. */
function argNames(df: Dockerfile | undefined, order: readonly StageEntry[]): string[] {
  const names = new Set<string>()
  for (const inst of df?.instructions ?? []) {
    if (inst.keyword !== 'ARG') continue
    for (const a of inst.args) names.add(a.split('=', 1)[0]!)
  }
  for (const e of order) {
    for (const s of e.def.steps) {
      const spec = s.spec as { op?: string; args?: readonly { name: string }[] }
      if (s.kind === 'config' && spec.op === 'arg') for (const a of spec.args ?? []) names.add(a.name)
    }
  }
  return [...names].filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n))
}

/** Defaults of the ARGs before the first FROM (undefined: declared without one). */
function globalArgs(df: Dockerfile | undefined): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>()
  for (const inst of df?.instructions ?? []) {
    if (inst.keyword === 'FROM') break
    if (inst.keyword !== 'ARG') continue
    for (const w of inst.args) {
      const i = w.indexOf('=')
      const env = new Map([...out].filter((e): e is [string, string] => e[1] !== undefined))
      try {
        out.set(i < 0 ? w : w.slice(0, i), i < 0 ? undefined : processWord(w.slice(i + 1), env, { escapeToken: df!.escapeToken }).value)
      } catch {
        out.set(i < 0 ? w : w.slice(0, i), undefined)
      }
    }
  }
  return out
}

/**
 * `FROM node:${NODE_VERSION}-alpine` as a template literal over the build-args parameter, when the
 * word only uses plain `$NAME` / `${NAME}` of global ARGs and gives the imported reference with the
 * defaults; anything else (the `${V:-w}` forms, quotes) keeps the imported reference.
 */
function fromTemplate(word: string, ref: string, globals: ReadonlyMap<string, string | undefined>): string | undefined {
  if (!word.includes('$')) return undefined
  const re = /\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))/g
  const literal = word.replace(re, '')
  if (/[$\\'"`]/.test(literal)) return undefined
  let out = ''
  let withDefaults = ''
  let last = 0
  for (const m of word.matchAll(re)) {
    const name = (m[1] ?? m[2])!
    if (!globals.has(name)) return undefined
    const text = word.slice(last, m.index)
    out += text + `\${args.${name} ?? ${str(globals.get(name) ?? '')}}`
    withDefaults += text + (globals.get(name) ?? '')
    last = m.index + m[0].length
  }
  out += word.slice(last)
  withDefaults += word.slice(last)
  if (withDefaults !== ref) return undefined
  const whole = /^\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))$/.exec(word)
  return whole ? `args.${whole[1] ?? whole[2]} ?? ${str(globals.get((whole[1] ?? whole[2])!) ?? '')}` : `\`${out}\``
}

/** Generates the module's text. */
export function generateModule(input: GenerateInput): string {
  const { order, byDef } = collectStages(input.target, (def) => input.names?.get(def), input.stageList ?? [])
  const taken = new Set<string>()
  const ids = new Map<StageEntry, string>()
  for (const e of order) ids.set(e, identifier(e.name === '' ? 'app' : e.name, taken))
  const targetEntry = byDef.get(input.target)!
  const buildArgs = argNames(input.dockerfile, order)

  const globals = globalArgs(input.dockerfile)
  // Stages of the Dockerfile matched to ours by name (or by position for unnamed ones).
  const astByStage = new Map<StageEntry, Instruction[]>()
  const ast = astStages(input.dockerfile)
  input.stageList?.forEach((def, i) => {
    const e = byDef.get(def)
    const insts = ast[i]
    if (e && insts && insts.length - 1 === e.def.steps.length && !astByStage.has(e)) astByStage.set(e, insts)
  })
  for (const e of order) {
    if (astByStage.has(e)) continue
    const byName = ast.find((insts) => {
      const w = insts[0]!.args
      return w.length >= 3 && w[w.length - 2]!.toLowerCase() === 'as' && w[w.length - 1]!.toLowerCase() === e.name.toLowerCase()
    })
    const found = byName ?? (e === targetEntry ? ast[ast.length - 1] : undefined)
    if (found && found.length - 1 === e.def.steps.length) astByStage.set(e, found)
  }

  const ctx: CallContext = {
    input: (dep: StepInput) => ('ref' in dep ? str(dep.ref) : ids.get(byDef.get(dep.stage)!)!),
    argValue: (name, value, marked) => {
      const known = buildArgs.includes(name)
      if (!known) return { value: value === undefined ? '' : str(value) }
      if (value === undefined) return { value: `args.${name}` }
      return { value: `args.${name} ?? ${str(value)}`, ...(marked ? { opts: `args.${name} === undefined ? { expand: true } : {}` } : {}) }
    },
  }

  const lines: string[] = []
  for (const e of order) {
    const insts = astByStage.get(e)
    if (lines.length > 0) lines.push('')
    lines.push(...commentLines(insts?.[0]?.comments ?? []))
    const base = e.def.base
    const fromWord = insts?.[0]?.args[0]
    const from = 'ref' in base ? (fromWord !== undefined ? fromTemplate(fromWord, base.ref, globals) : undefined) ?? str(base.ref) : ids.get(byDef.get(base.stage)!)!
    lines.push(`const ${ids.get(e)} = image().from(${from})`)
    e.def.steps.forEach((step, i) => {
      lines.push(...commentLines(insts?.[i + 1]?.comments ?? []).map((l) => `  ${l}`))
      lines.push(`  .${stepCall(step, ctx)}`)
    })
  }
  lines.push('', `return { ${order.map((e) => ids.get(e)).join(', ')} }`)

  const project = new Project({ useInMemoryFileSystem: true, manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Single } })
  const file = project.createSourceFile('build.ts', '')
  file.addImportDeclaration({ moduleSpecifier: input.importFrom ?? 'imagesmith', namedImports: ['image', 'cliBuildArgs'] })
  file.addInterface({
    name: 'BuildArgs',
    isExported: true,
    docs: ['Build arguments (`ARG`) of the Dockerfile; unset ones keep their defaults.'],
    properties: buildArgs.map((n) => ({ name: n, type: 'string', hasQuestionToken: true })),
  })
  file.addFunction({
    name: 'stages',
    isExported: true,
    docs: ['Every stage of the build, as builders; pass build args to override their defaults.'],
    parameters: [{ name: buildArgs.length > 0 ? 'args' : '_args', type: 'BuildArgs', initializer: '{}' }],
    statements: lines.join('\n'),
  })
  file.addFunction({
    name: 'target',
    isExported: true,
    docs: ['The image the Dockerfile builds (its last stage, or the chosen target), for these build args.'],
    parameters: [{ name: 'args', type: 'BuildArgs', initializer: '{}' }],
    statements: `return stages(args).${ids.get(targetEntry)}`,
  })
  // The CLI's `--build-arg` values, so `imagesmith build build.ts --build-arg BASE=…` picks the base.
  file.addExportAssignment({ isExportEquals: false, expression: 'target(cliBuildArgs())' })
  file.formatText({ indentSize: 2, convertTabsToSpaces: true, semicolons: ts.SemicolonPreference.Remove })
  const header = input.header ? `${commentLines(input.header.split('\n')).join('\n')}\n` : ''
  const text = file.getFullText()
  return header + (text.endsWith('\n') ? text : `${text}\n`)
}
