/**
 * Which words of a RUN/COPY/ADD line open heredocs, as BuildKit's `heredocsFromLine` decides:
 * the line is split into shell words with quotes and escapes kept, and a word opens a heredoc only
 * if the whole word is `[digits]<<[-][blanks]NAME` with NAME one shell word.
 */
import { processWords } from '../shell/expand.js'

export interface HeredocHead {
  readonly name: string
  readonly fileDescriptor: number
  readonly expand: boolean
  readonly chomp: boolean
}

const NO_ENV = (): undefined => undefined
// Go's \s is [\t\n\f\r ], \d is [0-9].
const HEREDOC = /^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$/

/** The heredocs a logical line opens, in order. Throws a message when a delimiter cannot be lexed. */
export function heredocsFromLine(line: string): HeredocHead[] {
  let words: readonly string[]
  try {
    // BuildKit lexes with `\` here whatever the file's escape character is.
    words = processWords(line, NO_ENV, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).words
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
  const m = HEREDOC.exec(word)
  if (!m) return undefined
  const rest = m[3]!
  if (rest.length === 0) return undefined
  // Lexed with and without quotes: a difference in quote count means part of the name was quoted.
  const plain = processWords(rest, NO_ENV, { skipUnsetEnv: true }).words
  if (plain.length !== 1) return undefined
  const raw = processWords(rest, NO_ENV, { skipUnsetEnv: true, rawQuotes: true }).words
  if (raw.length !== plain.length) throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`)
  const quotes = (s: string): number => s.split("'").length + s.split('"').length - 2
  return {
    name: plain[0]!,
    fileDescriptor: m[1] === '' ? 0 : Math.min(Number(m[1]), Number.MAX_SAFE_INTEGER),
    expand: quotes(plain[0]!) === quotes(raw[0]!),
    chomp: m[2] === '-',
  }
}
