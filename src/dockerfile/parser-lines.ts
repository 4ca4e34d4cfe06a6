/**
 * Physical-line rules of BuildKit's parser (`parser.go`, `directives.go`): line splitting with the
 * scanner's size limit, comments, continuation, parser directives.
 */
import type { Directive, EscapeToken } from './ast.js'
import { isGoSpace } from '../shell/expand.js'

/** bufio.Scanner's default token limit, which BuildKit's parser keeps. */
export const MAX_LINE_BYTES = 65535

/** A physical line: its text without line end, and the line end as written (`\n`, `\r\n`, or none). */
export interface PhysicalLine {
  readonly text: string
  readonly end: string
  /** Offset of the line's first character in the whole input. */
  readonly offset: number
}

/** BuildKit's scanLines: splits after each `\n`; a last line without `\n` still counts. */
export function splitLines(input: string): PhysicalLine[] {
  const lines: PhysicalLine[] = []
  let start = 0
  while (start < input.length) {
    const nl = input.indexOf('\n', start)
    const stop = nl < 0 ? input.length : nl + 1
    const raw = input.slice(start, stop)
    // trimNewline removes every trailing \r and \n.
    let cut = raw.length
    while (cut > 0 && (raw.charCodeAt(cut - 1) === 10 || raw.charCodeAt(cut - 1) === 13)) cut--
    lines.push({ text: raw.slice(0, cut), end: raw.slice(cut), offset: start })
    start = stop
  }
  return lines
}

/** Byte length of a line with its ending, as the scanner counts it. */
export function lineTooLong(line: PhysicalLine): boolean {
  const chars = line.text.length + line.end.length
  if (chars * 3 <= MAX_LINE_BYTES) return false
  const bytes = Buffer.byteLength(line.text) + line.end.length
  return line.end.endsWith('\n') ? bytes > MAX_LINE_BYTES + 1 : bytes > MAX_LINE_BYTES
}

/** Leading whitespace (Go's unicode.IsSpace), in UTF-16 units. */
export function leadingSpace(s: string): number {
  let i = 0
  while (i < s.length && isGoSpace(s.charCodeAt(i))) i++
  return i
}

export function isComment(line: string): boolean {
  const i = leadingSpace(line)
  return i < line.length && line.charCodeAt(i) === 0x23
}

/** Go's strings.TrimSpace. */
export function goTrimSpace(s: string): string {
  let a = 0
  let b = s.length
  while (a < b && isGoSpace(s.charCodeAt(a))) a++
  while (b > a && isGoSpace(s.charCodeAt(b - 1))) b--
  return s.slice(a, b)
}

/**
 * trimContinuationCharacter: a line continues when it ends in the escape character plus optional
 * blanks, unless that escape is itself escaped. Returns the line without them, and whether the
 * instruction ends here.
 */
export function trimContinuation(line: string, escape: EscapeToken): { text: string; ends: boolean } {
  let end = line.length
  while (end > 0 && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--
  if (end === 0 || line[end - 1] !== escape) return { text: line, ends: true }
  if (end >= 2 && line[end - 2] === escape) return { text: line, ends: true }
  return { text: line.slice(0, end - 1), ends: false }
}

/** A line that is empty or blank once comments are taken out. */
export function isEmptyContinuationLine(line: string): boolean {
  return leadingSpace(line) === line.length
}

/** Go's regexp \s: [\t\n\f\r ]. */
function isReSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d
}

/**
 * BuildKit's `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`, matched by hand: that pattern backtracks
 * quadratically in JavaScript on a long run of blanks (Go's engine is linear).
 */
function matchDirective(body: string): { key: string; value: string } | undefined {
  let i = 0
  const alpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
  if (i >= body.length || !alpha(body.charCodeAt(i))) return undefined
  while (i < body.length && (alpha(body.charCodeAt(i)) || (body.charCodeAt(i) >= 0x30 && body.charCodeAt(i) <= 0x39))) i++
  const key = body.slice(0, i)
  while (i < body.length && isReSpace(body.charCodeAt(i))) i++
  if (body[i] !== '=') return undefined
  i++
  const afterEq = i
  while (i < body.length && isReSpace(body.charCodeAt(i))) i++
  let end = body.length
  while (end > i && isReSpace(body.charCodeAt(end - 1))) end--
  // Only blanks after `=`: the engine backtracks and the value is the last blank.
  const value = end > i ? body.slice(i, end) : body.length > afterEq ? body.slice(-1) : ''
  // `.` does not match a newline.
  if (value.length === 0 || value.includes('\n')) return undefined
  return { key, value }
}

const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check'])

/**
 * BuildKit's DirectiveParser: directives are only recognised in the unbroken run of `# key=value`
 * lines at the top; the first other line ends the run. Repeating a key is an error.
 */
export class DirectiveScanner {
  #done = false
  readonly #seen = new Set<string>()
  readonly directives: Directive[] = []

  /** Returns the directive the line holds, or undefined; throws a message for a repeated key. */
  scan(line: string, lineNumber: number): Directive | undefined {
    if (this.#done) return undefined
    if (!line.startsWith('#')) {
      this.#done = true
      return undefined
    }
    const body = line.slice(1 + leadingSpace(line.slice(1)))
    const m = matchDirective(body)
    if (!m) {
      this.#done = true
      return undefined
    }
    const key = m.key.toLowerCase()
    if (!KNOWN_DIRECTIVES.has(key)) {
      this.#done = true
      return undefined
    }
    if (this.#seen.has(key)) throw new DirectiveError(`only one ${key} parser directive can be used`)
    this.#seen.add(key)
    const value = m.value
    const d: Directive = { name: key as Directive['name'], value, text: line, line: lineNumber }
    this.directives.push(d)
    return d
  }
}

export class DirectiveError extends Error {}
