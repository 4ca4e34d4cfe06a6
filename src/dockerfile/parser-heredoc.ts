/**
 * Which words of a RUN/COPY/ADD line open heredocs, as BuildKit's `heredocsFromLine` decides:
 * the line is split into shell words with quotes and escapes kept, and a word opens a heredoc only
 * if the whole word is `[digits]<<[-][blanks]NAME` with NAME one shell word.
 */
import { processWords } from '../shell/expand.js'
import { ExpansionBudget } from '../shell/limits.js'

export interface HeredocHead {
  readonly name: string
  readonly fileDescriptor: number
  readonly expand: boolean
  readonly chomp: boolean
}

const NO_ENV = (): undefined => undefined
/**
 * With no variables set and unset ones kept as written, lexing a line yields no more than the line
 * (no pattern is ever matched): no budget to run out of, which would silently drop its heredocs.
 */
const UNBOUNDED = new ExpansionBudget(Number.POSITIVE_INFINITY)
/**
 * BuildKit's `^(\d*)<<(-?)\s*([^<]*)$`, matched by hand: in JavaScript that pattern backtracks
 * quadratically on blanks followed by a `<` (Go's engine is linear).
 */
function matchHeredoc(word: string): { fd: string; chomp: boolean; rest: string } | undefined {
  let i = 0
  while (i < word.length && word.charCodeAt(i) >= 0x30 && word.charCodeAt(i) <= 0x39) i++
  const fd = word.slice(0, i)
  if (!word.startsWith('<<', i)) return undefined
  i += 2
  const chomp = word[i] === '-'
  if (chomp) i++
  // Go's \s: [\t\n\f\r ].
  while (i < word.length && ' \t\n\f\r'.includes(word[i]!)) i++
  const rest = word.slice(i)
  return rest.includes('<') ? undefined : { fd, chomp, rest }
}

/** The heredocs a logical line opens, in order. Throws a message when a delimiter cannot be lexed. */
export function heredocsFromLine(line: string): HeredocHead[] {
  let words: readonly string[]
  try {
    // BuildKit lexes with `\` here whatever the file's escape character is.
    words = processWords(line, NO_ENV, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true, budget: UNBOUNDED }).words
  } catch {
    // BuildKit ignores the error: no words, no heredocs.
    words = []
  }
  const docs: HeredocHead[] = []
  for (const word of words) {
    const doc = parseHeredoc(word)
    if (doc) docs.push(doc)
  }
  return docs
}

/** ParseHeredoc: the heredoc a single word opens, if it is one. */
export function parseHeredoc(word: string): HeredocHead | undefined {
  const m = matchHeredoc(word)
  if (!m) return undefined
  const rest = m.rest
  if (rest.length === 0) return undefined
  // Lexed with and without quotes: a difference in quote count means part of the name was quoted.
  const plain = processWords(rest, NO_ENV, { skipUnsetEnv: true }).words
  if (plain.length !== 1) return undefined
  const raw = processWords(rest, NO_ENV, { skipUnsetEnv: true, rawQuotes: true }).words
  if (raw.length !== plain.length) throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`)
  const quotes = (s: string): number => s.split("'").length + s.split('"').length - 2
  return {
    name: plain[0]!,
    fileDescriptor: m.fd === '' ? 0 : Math.min(Number(m.fd), Number.MAX_SAFE_INTEGER),
    expand: quotes(plain[0]!) === quotes(raw[0]!),
    chomp: m.chomp,
  }
}
