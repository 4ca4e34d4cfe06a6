/**
 * BuildKit's per-instruction argument parsers (`line_parsers.go`): JSON or shell form, whitespace
 * words, quote-aware words, key/value pairs, HEALTHCHECK's type word.
 */
import type { EscapeToken, KeyValue } from './ast.js'
import { isGoSpace } from '../shell/expand.js'
import { LineError } from './parser-errors.js'
import { goQuote } from '../util/go-format.js'

export type LineParser = (rest: string, escape: EscapeToken, restOffset: number) => { args: string[]; json: boolean; pairs?: KeyValue[] }

/** parseString: the rest as one node. */
export function parseString(rest: string): { args: string[]; json: boolean } {
  return { args: rest === '' ? [] : [rest], json: false }
}

/** parseStringsWhitespaceDelimited: split on runs of `[\t\v\f\r ]`, words verbatim. */
export function splitWhitespace(rest: string): string[] {
  if (rest === '') return []
  return rest.split(/[\t\v\f\r ]+/)
}

/** Go's encoding/json nesting limit: deeper input is a syntax error there, so no JSON form. */
const MAX_JSON_DEPTH = 10000

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** parseJSON: a JSON array of strings, or undefined when the text is not JSON (fallback). */
function parseJSON(rest: string, restOffset: number): string[] | undefined {
  if (!rest.startsWith('[')) return undefined
  if (jsonDepth(rest) > MAX_JSON_DEPTH) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(rest)
  } catch {
    return undefined
  }
  if (!Array.isArray(parsed)) return undefined
  const out: string[] = []
  for (const v of parsed) {
    if (typeof v !== 'string') {
      throw new LineError('when using JSON array syntax, arrays must be comprised of strings only', restOffset)
    }
    // Go's decoder turns an unpaired surrogate escape into U+FFFD.
    out.push(v.replace(LONE_SURROGATE, '\uFFFD'))
  }
  return out
}

/** Deepest bracket nesting outside strings. */
function jsonDepth(s: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      depth++
      if (depth > max) max = depth
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return max
}

/** parseMaybeJSON: exec form, or the rest verbatim as one node. */
export function parseMaybeJSON(rest: string, _escape: EscapeToken, restOffset: number): { args: string[]; json: boolean } {
  if (rest === '') return { args: [], json: false }
  const json = parseJSON(rest, restOffset)
  return json ? { args: json, json: true } : { args: [rest], json: false }
}

/** parseMaybeJSONToList: exec form, or whitespace-separated words. */
export function parseMaybeJSONToList(rest: string, _escape: EscapeToken, restOffset: number): { args: string[]; json: boolean } {
  const json = parseJSON(rest, restOffset)
  return json ? { args: json, json: true } : { args: splitWhitespace(rest), json: false }
}

/**
 * parseHealthConfig: the type word, then the command by the RUN/CMD rule. BuildKit looks for the
 * blank that ends the type byte by byte, so a UTF-8 continuation byte 0x85 or 0xA0 (inside `à`,
 * a no-break space, …) ends it mid-character, and only ASCII blanks are skipped after it. Kept:
 * `HEALTHCHECK CMD\u00a0curl` must be rejected here as it is there. The broken character's bytes
 * become U+FFFD (a JavaScript string cannot hold them).
 */
export function parseHealthConfig(rest: string, escape: EscapeToken, restOffset: number): { args: string[]; json: boolean } {
  let sep = 0
  let brokenTail: string | undefined
  while (sep < rest.length) {
    const c = rest.codePointAt(sep)!
    const width = c > 0xffff ? 2 : 1
    if (c < 0x80) {
      if (isGoSpace(c)) break
      sep += width
      continue
    }
    const bytes = Buffer.from(String.fromCodePoint(c), 'utf8')
    const at = bytes.findIndex((b, i) => i > 0 && (b === 0x85 || b === 0xa0))
    if (at > 0) {
      brokenTail = at < bytes.length - 1 ? '\uFFFD' : ''
      break
    }
    sep += width
  }
  if (sep === 0 && brokenTail === undefined) return { args: [], json: false }
  let typ = rest.slice(0, sep)
  let after: string
  let afterOffset: number
  if (brokenTail !== undefined) {
    typ += '\uFFFD'
    const width = rest.codePointAt(sep)! > 0xffff ? 2 : 1
    afterOffset = sep + width
    after = brokenTail
  } else {
    afterOffset = sep
    after = ''
  }
  let next = afterOffset
  if (after === '') while (next < rest.length && rest.charCodeAt(next) < 0x80 && isGoSpace(rest.charCodeAt(next))) next++
  const cmd = parseMaybeJSON(after + rest.slice(next), escape, restOffset + next)
  return { args: [typ, ...cmd.args], json: cmd.json }
}

/**
 * parseWords: words separated by unquoted whitespace, quotes and escapes kept; a lone escape at
 * the very end is dropped. Every character of a word is kept, so a word is a slice of the input
 * (cut short only by that final escape): slices, not per-character strings, keep long ENV lines
 * linear.
 */
export function parseWords(rest: string, escape: EscapeToken): string[] {
  const IN_SPACES = 0
  const IN_WORD = 1
  const IN_QUOTE = 2
  const esc = escape.charCodeAt(0)
  const words: string[] = []
  let phase = IN_SPACES
  let quote = 0
  let blankOK = false
  let start = 0
  let end = 0
  const n = rest.length
  const width = (c: number): number => (c > 0xffff ? 2 : 1)
  for (let pos = 0; pos <= n; ) {
    const c = pos < n ? rest.codePointAt(pos)! : -1
    if (phase === IN_SPACES) {
      if (pos === n) break
      if (isGoSpace(c)) {
        pos += width(c)
        continue
      }
      phase = IN_WORD
      start = end = pos
    }
    if (pos === n) {
      if (blankOK || end > start) words.push(rest.slice(start, end))
      break
    }
    if (phase === IN_WORD) {
      if (isGoSpace(c)) {
        phase = IN_SPACES
        if (blankOK || end > start) words.push(rest.slice(start, end))
        blankOK = false
        pos += width(c)
        continue
      }
      if (c === 0x27 || c === 0x22) {
        quote = c
        blankOK = true
        phase = IN_QUOTE
      }
      if (c === esc) {
        if (pos + 1 === n) {
          pos++
          continue
        }
        // The escape and the character after it both stay in the word.
        pos++
        pos += width(rest.codePointAt(pos)!)
        end = pos
        continue
      }
      pos += width(c)
      end = pos
      continue
    }
    // IN_QUOTE
    if (c === quote) phase = IN_WORD
    if (c === esc && quote !== 0x27) {
      if (pos + 1 === n) {
        phase = IN_WORD
        pos++
        continue
      }
      pos++
      pos += width(rest.codePointAt(pos)!)
      end = pos
      continue
    }
    pos += width(c)
    end = pos
  }
  return words
}

/** parseNameVal: ENV and LABEL, old `key value` form or `key=value …`; triples key, value, separator. */
export function parseNameVal(rest: string, key: string, escape: EscapeToken, restOffset: number): { args: string[]; json: boolean; pairs: KeyValue[] } {
  const words = parseWords(rest, escape)
  if (words.length === 0) return { args: [], json: false, pairs: [] }
  if (!words[0]!.includes('=')) {
    const m = /[\t\v\f\r ]+/.exec(rest)
    if (!m) throw new LineError(`${key} must have two arguments`, restOffset)
    const pair: KeyValue = { key: rest.slice(0, m.index), value: rest.slice(m.index + m[0].length), separator: '' }
    return { args: [pair.key, pair.value, ''], json: false, pairs: [pair] }
  }
  const pairs: KeyValue[] = []
  const args: string[] = []
  for (const word of words) {
    const eq = word.indexOf('=')
    if (eq < 0) throw new LineError(`Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`, restOffset)
    const pair: KeyValue = { key: word.slice(0, eq), value: word.slice(eq + 1), separator: '=' }
    pairs.push(pair)
    args.push(pair.key, pair.value, '=')
  }
  return { args, json: false, pairs }
}
