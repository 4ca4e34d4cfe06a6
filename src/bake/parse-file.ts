import { ErrorCodes, ImagesmithError } from '../errors.js'
import { EntryError, parseAttest, parseCache, parseOutput, parseSecret, parseSsh } from './entries.js'
import { interpolate, TemplateError } from './interpolate.js'
import { mergeSpec, type TargetSpec } from './spec.js'
import type { BakeGroup } from './types.js'

/** One bake file's name (for errors and format) and text. */
export interface BakeFileSource {
  readonly name: string
  readonly text: string
}

export interface ParseBakeOptions {
  /**
   * Values that override `variable` defaults, by name (the CLI passes `process.env`). Only declared
   * variables read it, as buildx: an environment variable alone defines nothing.
   */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Variables set by the command itself, which no file or environment overrides (buildx's `BAKE_CMD_CONTEXT`, `BAKE_LOCAL_PLATFORM`). */
  readonly builtins?: Readonly<Record<string, string>>
}

/** The files' targets (as each states them, before inherits) and groups, in file order, and the variables' values. */
export interface BakeConfig {
  readonly files: readonly string[]
  readonly groups: ReadonlyMap<string, BakeGroup>
  readonly targets: ReadonlyMap<string, TargetSpec>
  readonly variables: Readonly<Record<string, string | number | boolean>>
}

/** A bake file larger than this is refused before parsing (a repository's is a few kB). */
export const MAX_BAKE_FILE_BYTES = 4 << 20

/** buildx's `validTargetNameChars`: target and group names are `[a-zA-Z0-9_-]+`. */
export function isValidTargetName(name: string): boolean {
  if (name.length === 0 || name.length > 256) return false
  for (const c of name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_' || c === '-')) return false
  }
  return true
}

type Scalar = string | number | boolean

interface Where {
  readonly file: string
  readonly target?: string
  readonly group?: string
  readonly variable?: string
  readonly key?: string
}

function invalid(message: string, where: Where): ImagesmithError {
  const place = [where.target !== undefined ? `target ${JSON.stringify(where.target)}` : '', where.group !== undefined ? `group ${JSON.stringify(where.group)}` : '', where.variable !== undefined ? `variable ${JSON.stringify(where.variable)}` : ''].filter(Boolean).join(' ')
  return new ImagesmithError(ErrorCodes.BAKE_FILE_INVALID, `${where.file}${place ? `: ${place}` : ''}: ${message}`, { ...where })
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v)

/** Keys buildx knows that this reader does not take yet: named, so they fail loudly instead of being dropped. */
const NOT_YET: Readonly<Record<string, string>> = {
  matrix: 'matrix targets are not supported yet',
  name: '"name" only serves matrix targets, which are not supported yet',
  policy: 'build policies are not supported',
  resources: 'build resources are not supported',
}

/**
 * Reads JSON bake files (`docker-bake.json`) as buildx does: `variable`, `group` and `target` blocks, later
 * files merged over earlier ones (a target named twice merges key by key, a group's lists join), `${VAR}`
 * expanded in every string. Top-level scalars are global values usable as `${NAME}`, as in buildx.
 * Everything unknown is an error naming the key, the file and the target.
 */
export function parseBakeFiles(files: readonly BakeFileSource[], opts: ParseBakeOptions = {}): BakeConfig {
  const docs = files.map((f) => ({ name: f.name, doc: readDocument(f) }))
  const vars = new Map<string, { file: string; def: Record<string, unknown> }>()
  const globals = new Map<string, { file: string; value: Scalar }>()
  for (const { name, doc } of docs) {
    for (const [key, value] of Object.entries(doc)) {
      if (key === 'variable') {
        if (!isObject(value)) throw invalid('"variable" must be an object of variables', { file: name, key })
        for (const [v, def] of Object.entries(value)) {
          if (!isObject(def)) throw invalid('a variable must be an object ({"default": …})', { file: name, variable: v })
          for (const k of Object.keys(def)) {
            if (k !== 'default' && k !== 'description') throw invalid(`unknown key ${JSON.stringify(k)}${k === 'type' || k === 'validation' ? ' (typed and validated variables are not supported yet)' : ''}`, { file: name, variable: v, key: k })
          }
          vars.set(v, { file: name, def })
        }
      } else if (key === 'group' || key === 'target') {
        if (!isObject(value)) throw invalid(`"${key}" must be an object of ${key}s by name`, { file: name, key })
      } else if (key === 'function') {
        throw invalid('user functions are not supported in JSON bake files', { file: name, key })
      } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        globals.set(key, { file: name, value })
      } else {
        throw invalid(`unknown key ${JSON.stringify(key)} (expected "variable", "group" or "target")`, { file: name, key })
      }
    }
  }

  const values = new Map<string, Scalar>()
  const resolving: string[] = []
  const env = opts.env ?? {}
  const builtins = opts.builtins ?? {}
  const valueOf = (name: string, from: Where): Scalar => {
    if (Object.hasOwn(builtins, name)) return builtins[name]!
    const known = values.get(name)
    if (known !== undefined) return known
    const g = globals.get(name)
    const v = vars.get(name)
    if (!g && !v) throw invalid(`variable ${JSON.stringify(name)} does not exist`, { ...from, variable: from.variable ?? name })
    if (resolving.includes(name)) {
      throw new ImagesmithError(ErrorCodes.BAKE_CYCLE, `${(v ?? g)!.file}: variable ${JSON.stringify(name)} refers to itself: ${[...resolving.slice(resolving.indexOf(name)), name].join(' -> ')}`, { kind: 'variable', cycle: [...resolving.slice(resolving.indexOf(name)), name], file: (v ?? g)!.file })
    }
    resolving.push(name)
    try {
      let value: Scalar
      if (v) {
        const where = { file: v.file, variable: name }
        const d = v.def.default
        if (d !== undefined && d !== null && typeof d !== 'string' && typeof d !== 'number' && typeof d !== 'boolean') throw invalid('a default must be a string, a number or a boolean (lists and objects are not supported yet)', { ...where, key: 'default' })
        const def: Scalar = typeof d === 'string' ? expand(d, where) : (d ?? '')
        const override = env[name]
        value = override === undefined ? def : convertEnv(override, def, where)
      } else {
        value = typeof g!.value === 'string' ? expand(g!.value, { file: g!.file, variable: name }) : g!.value
      }
      values.set(name, value)
      return value
    } finally {
      resolving.pop()
    }
  }
  const expand = (s: string, where: Where): string => {
    try {
      return interpolate(s, (n) => String(valueOf(n, where)))
    } catch (e) {
      if (e instanceof TemplateError) throw invalid(e.message, where)
      throw e
    }
  }

  const targets = new Map<string, TargetSpec>()
  const groups = new Map<string, BakeGroup>()
  for (const { name: file, doc } of docs) {
    for (const [gname, body] of Object.entries(isObject(doc.group) ? doc.group : {})) {
      const where = { file, group: gname }
      if (!isValidTargetName(gname)) throw invalid('a group name may hold only letters, digits, "_" and "-"', where)
      if (!isObject(body)) throw invalid('a group must be an object ({"targets": […]})', where)
      let description: string | undefined
      let list: string[] = []
      for (const [k, v] of Object.entries(body)) {
        if (k === 'targets') list = stringList(v, { ...where, key: k }, expand)
        else if (k === 'description') description = scalarString(v, { ...where, key: k }, expand)
        else throw invalid(`unknown key ${JSON.stringify(k)} (a group has "targets" and "description")`, { ...where, key: k })
      }
      const prev = groups.get(gname)
      const merged = prev ? [...prev.targets, ...list.filter((t) => !prev.targets.includes(t))] : [...new Set(list)]
      groups.set(gname, { name: gname, ...((description ?? prev?.description) !== undefined ? { description: description ?? prev?.description } : {}), targets: merged })
    }
    for (const [tname, body] of Object.entries(isObject(doc.target) ? doc.target : {})) {
      const where = { file, target: tname }
      if (!isValidTargetName(tname)) throw invalid('a target name may hold only letters, digits, "_" and "-"', where)
      if (!isObject(body)) throw invalid('a target must be an object of its keys', where)
      const spec = readTarget(body, where, expand)
      const prev = targets.get(tname)
      targets.set(tname, prev ? mergeSpec(prev, spec) : spec)
    }
  }
  // Variables nothing referred to are still checked and reported, as buildx evaluates them all.
  for (const name of [...vars.keys(), ...globals.keys()]) valueOf(name, { file: (vars.get(name) ?? globals.get(name))!.file, variable: name })
  return { files: files.map((f) => f.name), groups, targets, variables: Object.fromEntries(values) }
}

function readDocument(f: BakeFileSource): Record<string, unknown> {
  const lower = f.name.toLowerCase()
  if (lower.endsWith('.hcl')) {
    throw invalid('HCL bake files are not supported, only JSON (docker-bake.json): there is no maintained HCL2 parser for Node; write the same blocks as JSON ({"target": {"app": {…}}})', { file: f.name })
  }
  if (lower.endsWith('.yml') || lower.endsWith('.yaml')) throw invalid('Compose files are not supported as bake files, only JSON (docker-bake.json)', { file: f.name })
  if (f.text.length > MAX_BAKE_FILE_BYTES) throw invalid(`larger than ${MAX_BAKE_FILE_BYTES} bytes`, { file: f.name })
  let doc: unknown
  try {
    doc = JSON.parse(f.text)
  } catch (e) {
    throw invalid(`not valid JSON (only JSON bake files are supported): ${(e as Error).message}`, { file: f.name })
  }
  if (!isObject(doc)) throw invalid('a bake file must be a JSON object', { file: f.name })
  return doc
}

type Expand = (s: string, where: Where) => string

function scalarString(v: unknown, where: Where, expand: Expand): string {
  if (typeof v === 'string') return expand(v, where)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  throw invalid(`${JSON.stringify(where.key)} must be a string`, where)
}

function stringList(v: unknown, where: Where, expand: Expand): string[] {
  if (!Array.isArray(v)) throw invalid(`${JSON.stringify(where.key)} must be a list of strings`, where)
  return v.map((x) => scalarString(x, where, expand))
}

function boolValue(v: unknown, where: Where, expand: Expand): boolean {
  if (typeof v === 'boolean') return v
  if (typeof v === 'string') {
    const s = expand(v, where)
    if (s === 'true' || s === 'false') return s === 'true'
  }
  throw invalid(`${JSON.stringify(where.key)} must be true or false`, where)
}

/** A map of strings; a `null` value unsets the name (buildx skips nil args and labels when merging). */
function stringMap(v: unknown, where: Where, expand: Expand): Record<string, string> {
  if (!isObject(v)) throw invalid(`${JSON.stringify(where.key)} must be an object of strings`, where)
  const out: Record<string, string> = {}
  for (const [k, x] of Object.entries(v)) {
    if (x === null) continue
    out[k] = scalarString(x, { ...where, key: `${where.key}.${k}` }, expand)
  }
  return out
}

function entryList<T>(v: unknown, where: Where, expand: Expand, parse: (x: unknown) => T): T[] {
  if (!Array.isArray(v)) throw invalid(`${JSON.stringify(where.key)} must be a list`, where)
  return v.map((x) => {
    const value = typeof x === 'string' ? expand(x, where) : isObject(x) ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, typeof y === 'string' ? expand(y, where) : y])) : x
    try {
      return parse(value)
    } catch (e) {
      if (e instanceof EntryError) throw invalid(`${JSON.stringify(where.key)}: ${e.message}`, where)
      throw e
    }
  })
}

type KeyReader = (spec: TargetSpec, v: unknown, where: Where, expand: Expand) => void

const str =
  (k: 'description' | 'context' | 'dockerfile' | 'dockerfileInline' | 'target' | 'network' | 'shmSize' | 'call'): KeyReader =>
  (s, v, w, e) => void (s[k] = scalarString(v, w, e))
const list =
  (k: 'inherits' | 'annotations' | 'tags' | 'platforms' | 'noCacheFilter' | 'ulimits' | 'entitlements'): KeyReader =>
  (s, v, w, e) => void (s[k] = stringList(v, w, e))
const map =
  (k: 'args' | 'labels' | 'contexts' | 'extraHosts'): KeyReader =>
  (s, v, w, e) => void (s[k] = stringMap(v, w, e))

/** Every target key of buildx's `Target` this reader takes, by its name in the file. */
const TARGET_KEYS: Readonly<Record<string, KeyReader>> = {
  description: str('description'),
  inherits: list('inherits'),
  context: str('context'),
  contexts: map('contexts'),
  dockerfile: str('dockerfile'),
  'dockerfile-inline': str('dockerfileInline'),
  target: str('target'),
  args: map('args'),
  labels: map('labels'),
  annotations: list('annotations'),
  attest: (s, v, w, e) => void (s.attest = entryList(v, w, e, parseAttest)),
  tags: list('tags'),
  platforms: list('platforms'),
  output: (s, v, w, e) => void (s.outputs = entryList(v, w, e, parseOutput)),
  'cache-from': (s, v, w, e) => void (s.cacheFrom = entryList(v, w, e, parseCache)),
  'cache-to': (s, v, w, e) => void (s.cacheTo = entryList(v, w, e, parseCache)),
  secret: (s, v, w, e) => void (s.secrets = entryList(v, w, e, parseSecret)),
  ssh: (s, v, w, e) => void (s.ssh = entryList(v, w, e, parseSsh)),
  'no-cache': (s, v, w, e) => void (s.noCache = boolValue(v, w, e)),
  'no-cache-filter': list('noCacheFilter'),
  pull: (s, v, w, e) => void (s.pull = boolValue(v, w, e)),
  network: str('network'),
  'shm-size': str('shmSize'),
  ulimits: list('ulimits'),
  'extra-hosts': map('extraHosts'),
  entitlements: list('entitlements'),
  call: str('call'),
}

function readTarget(body: Record<string, unknown>, where: Where, expand: Expand): TargetSpec {
  const spec: TargetSpec = {}
  for (const [key, value] of Object.entries(body)) {
    const w = { ...where, key }
    if (Object.hasOwn(NOT_YET, key)) throw invalid(`${JSON.stringify(key)}: ${NOT_YET[key]}`, w)
    const read = Object.hasOwn(TARGET_KEYS, key) ? TARGET_KEYS[key] : undefined
    if (!read) throw invalid(`unknown key ${JSON.stringify(key)}`, w)
    if (value === null) continue // HCL's null: not set here
    read(spec, value, w, expand)
  }
  return spec
}

/** An environment value for a variable takes its default's type, as buildx converts primitives. */
function convertEnv(raw: string, def: Scalar, where: Where): Scalar {
  if (typeof def === 'boolean') {
    const b = parseGoBool(raw)
    if (b === undefined) throw invalid(`${JSON.stringify(raw)} from the environment is not a boolean`, where)
    return b
  }
  if (typeof def === 'number') {
    const n = raw.trim() === '' ? NaN : Number(raw)
    if (!Number.isFinite(n)) throw invalid(`${JSON.stringify(raw)} from the environment is not a number`, where)
    return n
  }
  return raw
}

/** Go's strconv.ParseBool, which buildx uses for booleans given as text. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false
  return undefined
}
