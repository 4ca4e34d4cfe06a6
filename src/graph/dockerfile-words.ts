/**
 * How a value is written so that BuildKit's Dockerfile frontend reads it back unchanged: its line
 * parser (continuations, JSON arrays) and its shell lexer (quotes, `\` escapes, `$` expansion).
 * The escape character is `\` unless the printer writes an `# escape=\`` directive (when the
 * words it prints were read under one): `WordMode.escape`.
 */
import { ErrorCodes, ImagesmithError } from '../errors.js'

/** When a value cannot be written: `strict` throws a typed error, otherwise a readable approximation is kept (step descriptions). */
export interface WordMode {
  readonly strict: boolean
  /** The file's escape character. @default '\\' */
  readonly escape?: '\\' | '`'
}

/**
 * A word the lexer processes (COPY/ADD paths, WORKDIR, USER, …), whitespace kept: each special
 * character (`$`, quotes, the escape character) is escaped, so a literal `$` stays literal.
 */
export function lexerWord(value: string, esc: '\\' | '`' = '\\'): string {
  return value.replace(esc === '`' ? /[`$"']/g : /[\\$"']/g, `${esc}$&`)
}

/** How a spec's words are written: marked (`expand`) words verbatim, literal ones escaped (graph/expansion). */
export interface WordMarker {
  readonly expand?: true
  readonly escapeToken?: '`'
}

/** A marked word, its escapes rewritten when it was read under another escape character than the file's. */
export function rawWord(value: string, marker: WordMarker, esc: '\\' | '`' = '\\'): string {
  const from = marker.escapeToken ?? '\\'
  if (from === esc) return value
  let out = ''
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!
    if (c === from && i + 1 < value.length) out += esc + value[++i]
    else if (c === esc) out += esc + esc
    else out += c
  }
  return out
}

/** A path-like word: verbatim when marked, else with the lexer's special characters escaped. */
export function word(value: string, marker: WordMarker, mode: Pick<WordMode, 'escape'> = {}): string {
  return marker.expand ? rawWord(value, marker, mode.escape) : lexerWord(value, mode.escape)
}

/** A value in `key=value` pairs (ENV, LABEL, ARG): bare when plain, else double-quoted with `\`, `"` and `$` escaped. */
export function pairValue(value: string, what: string, mode: WordMode, marker: WordMarker = {}): string {
  if (marker.expand) {
    const raw = rawWord(value, marker, mode.escape)
    // A word as written holds its own quotes (`K=` is an empty word); one without any that has
    // spaces came from ENV's legacy `ENV K v w` form.
    return /\s/.test(raw) && !/["'\\]/.test(raw) ? `"${raw}"` : raw
  }
  if (value.includes('\n')) {
    // BuildKit's lexer has no escape for a newline (`\n` stays two characters, and a backslash before
    // a line break is a continuation that removes both): such a value has no Dockerfile spelling. A
    // carriage return is kept where it is (inside the quotes, never at the end of the line).
    if (mode.strict) throw notRepresentable(`${what} holds a line break, which a Dockerfile cannot express`, { what, value })
    return JSON.stringify(value)
  }
  // An empty word reads back as an empty value, and stays literal when read (nothing to expand).
  if (value === '') return ''
  if (!/[\s\\$"'`]/.test(value)) return value
  const esc = mode.escape ?? '\\'
  return `"${value.replace(esc === '`' ? /[`$"]/g : /[\\$"]/g, `${esc}$&`)}"`
}

/** A key of a `key=value` pair (LABEL keys may hold anything but `=`). */
export function pairKey(key: string, what: string, mode: WordMode, marker: WordMarker = {}): string {
  if (marker.expand) return rawWord(key, marker, mode.escape)
  if (/^[^\s\\$"'=`]+$/.test(key)) return key
  if (key.includes('=') && mode.strict) throw notRepresentable(`${what} key ${JSON.stringify(key)} holds '=', which a Dockerfile cannot express`, { what, key })
  return pairValue(key, what, mode)
}

/**
 * A flag's value (`--chown=…`, `--mount=…`, `--from=…`) as written. BuildKit reads flag words byte
 * by byte: quotes removed, the escape character taking the next byte as it is, each byte one
 * character; so a value read from a file holds a non-ASCII character as its UTF-8 bytes. Written
 * back: those bytes as the character again, double-quoted when it holds a blank, a quote or the
 * escape character (inside quotes only the closing quote and the escape character are special).
 */
export function flagValue(value: string, mode: WordMode): string {
  let text = value
  if (/[^\x00-\x7f]/.test(value)) {
    let decoded: string | undefined
    if (!/[^\x00-\xff]/.test(value)) {
      try {
        decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(value, 'latin1'))
      } catch {
        decoded = undefined
      }
    }
    if (decoded === undefined) {
      if (mode.strict) throw notRepresentable(`flag value ${JSON.stringify(value)} has characters a flag cannot hold (BuildKit reads flags byte by byte)`, { value })
      decoded = value
    }
    text = decoded
  }
  const esc = mode.escape ?? '\\'
  // Any non-ASCII character is quoted too: a UTF-8 byte 0x85 or 0xA0 inside one ends an unquoted word.
  if (text !== '' && !/[^\x21-\x7e]|["']/.test(text) && !text.includes(esc)) return text
  return `"${text.replace(esc === '`' ? /[`"]/g : /[\\"]/g, `${esc}$&`)}"`
}

/** A JSON array as the Dockerfile parser reads it (exec form, VOLUME, SHELL, COPY with spaces). */
export function jsonArray(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(', ')}]`
}

/**
 * Text the line parser would take for something else: a line feed (it ends the line), or the escape
 * character, then only spaces and tabs, ending the text (a continuation) unless that escape is
 * itself escaped (`echo \\` ends the line). A carriage return inside a line is kept by the parser
 * (it only trims those before the line feed), so it needs no other form.
 */
export function breaksLine(text: string, esc: '\\' | '`' = '\\'): boolean {
  if (text.includes('\n')) return true
  let end = text.length
  while (end > 0 && (text[end - 1] === ' ' || text[end - 1] === '\t')) end--
  return end > 0 && text[end - 1] === esc && !(end >= 2 && text[end - 2] === esc)
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

/** A heredoc delimiter that no line of `body` equals (the parser drops carriage returns before a line feed when it compares). */
export function heredocDelimiter(body: string): string {
  const lines = new Set(body.split('\n').map((l) => l.replace(/\r+$/, '')))
  let name = 'EOF'
  for (let i = 1; lines.has(name); i++) name = `EOF${i}`
  return name
}

export function notRepresentable(message: string, details: Record<string, unknown>): ImagesmithError {
  return new ImagesmithError(ErrorCodes.NOT_REPRESENTABLE, message, details)
}
