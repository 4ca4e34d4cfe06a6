/**
 * How a value is written so that BuildKit's Dockerfile frontend reads it back unchanged: its line
 * parser (continuations, JSON arrays) and its shell lexer (quotes, `\` escapes, `$` expansion).
 * The escape character is always `\` here: the printer never writes an `# escape=` directive.
 */
import { ErrorCodes, ImagesmithError } from '../errors.js'

/** When a value cannot be written: `strict` throws a typed error, otherwise a readable approximation is kept (step descriptions). */
export interface WordMode {
  readonly strict: boolean
}

/** Characters the shell lexer gives a meaning to in an unquoted word (whitespace splits words elsewhere). */
const LEXER_SPECIAL = /[\\$"']/g

/**
 * A word the lexer processes (COPY/ADD paths, WORKDIR, USER, …), whitespace kept: each special
 * character is escaped, so a literal `$` stays literal and quotes stay quotes.
 */
export function lexerWord(value: string): string {
  return value.replace(LEXER_SPECIAL, '\\$&')
}

/** How a spec's words are written: marked (`expand`) words verbatim, literal ones escaped (graph/expansion). */
export interface WordMarker {
  readonly expand?: true
  readonly escapeToken?: '`'
}

/**
 * A marked word written with `\` as the escape character. The printer never writes an
 * `# escape=` directive, so a word read under a backtick escape has its escapes rewritten.
 */
export function rawWord(value: string, marker: WordMarker): string {
  if (marker.escapeToken !== '`') return value
  let out = ''
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!
    if (c === '`' && i + 1 < value.length) out += `\\${value[++i]}`
    else if (c === '\\') out += '\\\\'
    else out += c
  }
  return out
}

/** A path-like word: verbatim when marked, else with the lexer's special characters escaped. */
export function word(value: string, marker: WordMarker): string {
  return marker.expand ? rawWord(value, marker) : lexerWord(value)
}

/** A value in `key=value` pairs (ENV, LABEL, ARG): bare when plain, else double-quoted with `\`, `"` and `$` escaped. */
export function pairValue(value: string, what: string, mode: WordMode, marker: WordMarker = {}): string {
  if (marker.expand) {
    const raw = rawWord(value, marker)
    // A word as written holds its own quotes; one without any that has spaces came from ENV's legacy `ENV K v w` form.
    return raw === '' || (/\s/.test(raw) && !/["'\\]/.test(raw)) ? `"${raw}"` : raw
  }
  if (/[\n\r]/.test(value)) {
    // BuildKit's lexer has no escape for a newline (`\n` stays two characters, and a backslash before
    // a line break is a continuation that removes both): such a value has no Dockerfile spelling.
    if (mode.strict) throw notRepresentable(`${what} holds a line break, which a Dockerfile cannot express`, { what, value })
    return JSON.stringify(value)
  }
  if (value !== '' && !/[\s\\$"'`]/.test(value)) return value
  return `"${value.replace(/[\\$"]/g, '\\$&')}"`
}

/** A key of a `key=value` pair (LABEL keys may hold anything but `=`). */
export function pairKey(key: string, what: string, mode: WordMode, marker: WordMarker = {}): string {
  if (marker.expand) return rawWord(key, marker)
  if (/^[^\s\\$"'=`]+$/.test(key)) return key
  if (key.includes('=') && mode.strict) throw notRepresentable(`${what} key ${JSON.stringify(key)} holds '=', which a Dockerfile cannot express`, { what, key })
  return pairValue(key, what, mode)
}

/** A JSON array as the Dockerfile parser reads it (exec form, VOLUME, SHELL, COPY with spaces). */
export function jsonArray(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(', ')}]`
}

/** Text the line parser would take for something else: a line break, or a backslash ending the line (a continuation). */
export function breaksLine(text: string): boolean {
  return /[\n\r]/.test(text) || /\\\s*$/.test(text)
}

/** Shell-form text that the parser would read as exec form (it tries JSON first). */
export function looksLikeJson(text: string): boolean {
  const t = text.trim()
  if (!t.startsWith('[')) return false
  try {
    const v: unknown = JSON.parse(t)
    return Array.isArray(v) && v.every((x) => typeof x === 'string')
  } catch {
    return false
  }
}

/** A heredoc delimiter that no line of `body` equals. */
export function heredocDelimiter(body: string): string {
  const lines = new Set(body.split('\n'))
  let name = 'EOF'
  for (let i = 1; lines.has(name); i++) name = `EOF${i}`
  return name
}

export function notRepresentable(message: string, details: Record<string, unknown>): ImagesmithError {
  return new ImagesmithError(ErrorCodes.NOT_REPRESENTABLE, message, details)
}
