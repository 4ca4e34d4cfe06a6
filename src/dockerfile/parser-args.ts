/**
 * One logical line into keyword, flags and argument words, as BuildKit's `split_command.go` and
 * `line_parsers.go` do it (their Go quirks included, each noted where it is kept).
 */
import type { EscapeToken, KeyValue } from './ast.js'
import { isGoSpace } from '../shell/expand.js'
import { goTrimSpace } from './parser-lines.js'

/** A failure at `offset` (UTF-16 index into the logical line). */
export class LineError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message)
  }
}

export interface ParsedFlag {
  readonly word: string
  readonly raw: string
  /** Offset of the flag in the logical line. */
  readonly offset: number
}

/** One instruction of a logical line, before positions and heredocs are attached. */
export interface ParsedLine {
  readonly keywordRaw: string
  readonly keywordOffset: number
  readonly flags: readonly ParsedFlag[]
  readonly rest: string
  readonly restOffset: number
  readonly args: readonly string[]
  readonly json: boolean
  readonly pairs: readonly KeyValue[] | undefined
  readonly child: ParsedLine | undefined
  readonly known: boolean
}

type LineParser = (rest: string, escape: EscapeToken, restOffset: number) => { args: string[]; json: boolean; pairs?: KeyValue[] }

const DISPATCH: Readonly<Record<string, LineParser>> = {
  add: parseMaybeJSONToList,
  arg: (rest, esc) => ({ args: parseWords(rest, esc), json: false }),
  cmd: parseMaybeJSON,
  copy: parseMaybeJSONToList,
  entrypoint: parseMaybeJSON,
  env: (rest, esc, off) => parseNameVal(rest, 'ENV', esc, off),
  expose: (rest) => ({ args: splitWhitespace(rest), json: false }),
  from: (rest) => ({ args: splitWhitespace(rest), json: false }),
  healthcheck: parseHealthConfig,
  label: (rest, esc, off) => parseNameVal(rest, 'LABEL', esc, off),
  maintainer: parseString,
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJSONToList,
  workdir: parseString,
}

/**
 * newNodeFromLine. ONBUILD's trigger is parsed in a loop, not by recursion, so a line of a
 * hundred thousand `ONBUILD`s cannot exhaust the stack.
 */
export function parseLogicalLine(line: string, escape: EscapeToken): ParsedLine {
  const levels: Omit<ParsedLine, 'child'>[] = []
  let text = line
  let base = 0
  for (;;) {
    const split = splitCommand(text, escape, base)
    const lower = split.keywordRaw.toLowerCase()
    if (lower === 'onbuild') {
      levels.push({ ...split, args: [], json: false, pairs: undefined, known: true })
      if (split.rest === '') break
      text = split.rest
      base = split.restOffset
      continue
    }
    const fn = DISPATCH[lower]
    // BuildKit's parser keeps unknown words with one empty argument; its next stage rejects them.
    const parsed = fn ? fn(split.rest, escape, split.restOffset) : { args: [''], json: false }
    levels.push({ ...split, args: parsed.args, json: parsed.json, pairs: parsed.pairs, known: fn !== undefined })
    break
  }
  let child: ParsedLine | undefined
  for (let i = levels.length - 1; i >= 0; i--) child = { ...levels[i]!, child }
  return child!
}

/** splitCommand: keyword up to the first blank run, then the flags, then the trimmed rest. */
function splitCommand(
  line: string,
  escape: EscapeToken,
  base: number,
): { keywordRaw: string; keywordOffset: number; flags: ParsedFlag[]; rest: string; restOffset: number } {
  let a = 0
  while (a < line.length && isGoSpace(line.charCodeAt(a))) a++
  let b = line.length
  while (b > a && isGoSpace(line.charCodeAt(b - 1))) b--
  let k = a
  while (k < b && !isBlank(line.charCodeAt(k))) k++
  const keywordRaw = line.slice(a, k)
  if (k === b) return { keywordRaw, keywordOffset: base + a, flags: [], rest: '', restOffset: base + b }
  let argStart = k
  while (argStart < b && isBlank(line.charCodeAt(argStart))) argStart++
  const { flags, restStart } = extractBuilderFlags(line.slice(argStart, b), escape, base + argStart)
  let r = restStart
  const args = line.slice(argStart, b)
  while (r < args.length && isGoSpace(args.charCodeAt(r))) r++
  let e = args.length
  while (e > r && isGoSpace(args.charCodeAt(e - 1))) e--
  return { keywordRaw, keywordOffset: base + a, flags, rest: args.slice(r, e), restOffset: base + argStart + r }
}

/** BuildKit's reWhitespace class: `[\t\v\f\r ]`. */
function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0b || c === 0x0c || c === 0x0d
}

/**
 * extractBuilderFlags. BuildKit walks this part byte by byte and writes each byte as a rune, so
 * a non-ASCII character in a flag reaches the instruction as its UTF-8 bytes read as Latin-1
 * (`--chown=jürgen` gives `jÃ¼rgen`), and bytes 0x85 and 0xA0 inside a character count as
 * blanks. Kept: the same Dockerfile must mean the same thing here as under BuildKit.
 */
function extractBuilderFlags(line: string, escape: EscapeToken, base: number): { flags: ParsedFlag[]; restStart: number } {
  const IN_SPACES = 0
  const IN_WORD = 1
  const IN_QUOTE = 2
  const esc = escape.charCodeAt(0)
  const flags: ParsedFlag[] = []
  let phase = IN_SPACES
  let word = ''
  let wordStart = 0
  let quote = 0
  let blankOK = false
  // Byte cursor over the UTF-16 string: `i` is the index of the current code point, `bytes` its
  // UTF-8 bytes, `bi` the byte within it.
  let i = 0
  let bytes: number[] = []
  let bi = 0
  const load = (at: number): void => {
    i = at
    bi = 0
    if (at >= line.length) {
      bytes = []
      return
    }
    const cp = line.codePointAt(at)!
    bytes = cp < 0x80 ? [cp] : [...Buffer.from(String.fromCodePoint(cp), 'utf8')]
  }
  const advance = (): void => {
    if (bi + 1 < bytes.length) bi++
    else load(i + (line.codePointAt(i)! > 0xffff ? 2 : 1))
  }
  const atEnd = (): boolean => i >= line.length
  const isLastByte = (): boolean => bi === bytes.length - 1 && i + (line.codePointAt(i)! > 0xffff ? 2 : 1) >= line.length
  const endWord = (at: number): void => {
    if (word !== '--' && (blankOK || word.length > 0)) flags.push({ word, raw: line.slice(wordStart, at), offset: base + wordStart })
  }
  load(0)
  for (;;) {
    if (phase === IN_SPACES) {
      if (atEnd()) return { flags, restStart: line.length }
      const c = bytes[bi]!
      if (isGoSpace(c)) {
        advance()
        continue
      }
      if (c !== 0x2d || isLastByte() || line.charCodeAt(i + 1) !== 0x2d) {
        // A word that does not start with `--` ends the flags; mid-character only after a 0x85/0xA0 byte.
        return { flags, restStart: bi === 0 ? i : i + (line.codePointAt(i)! > 0xffff ? 2 : 1) }
      }
      phase = IN_WORD
      wordStart = i
    }
    if (atEnd()) {
      endWord(line.length)
      return { flags, restStart: line.length }
    }
    let c = bytes[bi]!
    if (phase === IN_WORD) {
      if (isGoSpace(c)) {
        if (word === '--') return { flags, restStart: i }
        endWord(i)
        word = ''
        blankOK = false
        phase = IN_SPACES
        advance()
        continue
      }
      if (c === 0x27 || c === 0x22) {
        quote = c
        blankOK = true
        phase = IN_QUOTE
        advance()
        continue
      }
      if (c === esc) {
        if (isLastByte()) {
          advance()
          continue
        }
        advance()
        c = bytes[bi]!
      }
      word += String.fromCharCode(c)
      advance()
      continue
    }
    // IN_QUOTE
    if (c === quote) {
      phase = IN_WORD
      advance()
      continue
    }
    if (c === esc) {
      if (isLastByte()) {
        phase = IN_WORD
        advance()
        continue
      }
      advance()
      c = bytes[bi]!
    }
    word += String.fromCharCode(c)
    advance()
  }
}

/** parseString: the rest as one node. */
function parseString(rest: string): { args: string[]; json: boolean } {
  return { args: rest === '' ? [] : [rest], json: false }
}

/** parseStringsWhitespaceDelimited: split on runs of `[\t\v\f\r ]`, words verbatim. */
function splitWhitespace(rest: string): string[] {
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
function parseMaybeJSON(rest: string, _escape: EscapeToken, restOffset: number): { args: string[]; json: boolean } {
  if (rest === '') return { args: [], json: false }
  const json = parseJSON(rest, restOffset)
  return json ? { args: json, json: true } : { args: [rest], json: false }
}

/** parseMaybeJSONToList: exec form, or whitespace-separated words. */
function parseMaybeJSONToList(rest: string, _escape: EscapeToken, restOffset: number): { args: string[]; json: boolean } {
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
function parseHealthConfig(rest: string, escape: EscapeToken, restOffset: number): { args: string[]; json: boolean } {
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
 * the very end is dropped.
 */
export function parseWords(rest: string, escape: EscapeToken): string[] {
  const IN_SPACES = 0
  const IN_WORD = 1
  const IN_QUOTE = 2
  const words: string[] = []
  let phase = IN_SPACES
  let quote = ''
  let blankOK = false
  let word = ''
  const n = rest.length
  for (let pos = 0; pos <= n; ) {
    let ch = pos < n ? String.fromCodePoint(rest.codePointAt(pos)!) : ''
    let width = ch.length
    if (phase === IN_SPACES) {
      if (pos === n) break
      if (isGoSpace(ch.codePointAt(0)!)) {
        pos += width
        continue
      }
      phase = IN_WORD
    }
    if (pos === n) {
      if (blankOK || word.length > 0) words.push(word)
      break
    }
    if (phase === IN_WORD) {
      if (isGoSpace(ch.codePointAt(0)!)) {
        phase = IN_SPACES
        if (blankOK || word.length > 0) words.push(word)
        word = ''
        blankOK = false
        pos += width
        continue
      }
      if (ch === "'" || ch === '"') {
        quote = ch
        blankOK = true
        phase = IN_QUOTE
      }
      if (ch === escape) {
        if (pos + width === n) {
          pos += width
          continue
        }
        word += ch
        pos += width
        ch = String.fromCodePoint(rest.codePointAt(pos)!)
        width = ch.length
      }
      word += ch
      pos += width
      continue
    }
    // IN_QUOTE
    if (ch === quote) phase = IN_WORD
    if (ch === escape && quote !== "'") {
      if (pos + width === n) {
        phase = IN_WORD
        pos += width
        continue
      }
      pos += width
      word += ch
      ch = String.fromCodePoint(rest.codePointAt(pos)!)
      width = ch.length
    }
    word += ch
    pos += width
  }
  return words
}

/** parseNameVal: ENV and LABEL, old `key value` form or `key=value …`; triples key, value, separator. */
function parseNameVal(rest: string, key: string, escape: EscapeToken, restOffset: number): { args: string[]; json: boolean; pairs: KeyValue[] } {
  const words = parseWords(rest, escape)
  if (words.length === 0) return { args: [], json: false, pairs: [] }
  if (!words[0]!.includes('=')) {
    const m = /[\t\v\f\r ]+/.exec(rest)
    if (!m) throw new LineError(`${key} must have two arguments`, restOffset)
    const pair: KeyValue = { key: rest.slice(0, m.index), value: rest.slice(m.index + m[0].length), separator: '' }
    return { args: [pair.key, pair.value, ''], json: false, pairs: [pair] }
  }
  const pairs: KeyValue[] = []
  for (const word of words) {
    const eq = word.indexOf('=')
    if (eq < 0) throw new LineError(`Syntax error - can't find = in ${goQuoteShort(word)}. Must be of the form: name=value`, restOffset)
    pairs.push({ key: word.slice(0, eq), value: word.slice(eq + 1), separator: '=' })
  }
  return { args: pairs.flatMap((p) => [p.key, p.value, p.separator]), json: false, pairs }
}

function goQuoteShort(s: string): string {
  return JSON.stringify(s)
}

export { goTrimSpace }
