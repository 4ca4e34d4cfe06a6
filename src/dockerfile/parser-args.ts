/**
 * One logical line into keyword, flags and argument words, as BuildKit's `split_command.go` and
 * `line_parsers.go` do it (their Go quirks included, each noted where it is kept).
 */
import type { EscapeToken, KeyValue } from './ast.js'
import { isGoSpace } from '../shell/expand.js'
import { LineError } from './parser-errors.js'
import {
  parseHealthConfig,
  parseMaybeJSON,
  parseMaybeJSONToList,
  parseNameVal,
  parseString,
  parseWords,
  splitWhitespace,
  type LineParser,
} from './parser-line-parsers.js'

export { LineError }

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

