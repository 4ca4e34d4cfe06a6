/**
 * Word expansion exactly as BuildKit's Dockerfile shell lexer (`frontend/dockerfile/shell/lex.go`)
 * does it: `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?msg}`, `${V?msg}`,
 * `${V#pat}`, `${V##pat}`, `${V%pat}`, `${V%%pat}`, `${V/pat/repl}`, `${V//pat/repl}`, single and
 * double quotes and the escape character (`\` or a backtick).
 *
 * Pure: no I/O, no globals. Executors use it at build time against the image's ENV, the Dockerfile
 * lowering against build args; both get back which variables the word used, for cache keys and for
 * printing `$VAR` back where it was.
 */
import type { ExpandOptions, ShellEnv } from './expand-options.js'
import { Lexer } from './lexer.js'

export { isGoSpace } from './chars.js'
export type { EscapeToken, ExpandOptions, ShellEnv } from './expand-options.js'

/** The result of {@link processWord}. */
export interface WordExpansion {
  readonly value: string
  /** Names the word referenced that were set (BuildKit's `Matched`). */
  readonly used: ReadonlySet<string>
  /** Names the word referenced that were not set (BuildKit's `Unmatched`). */
  readonly unset: ReadonlySet<string>
}

/** The result of {@link processWords}. */
export interface WordsExpansion {
  readonly words: readonly string[]
  readonly used: ReadonlySet<string>
  readonly unset: ReadonlySet<string>
}

/**
 * BuildKit's `ProcessWord`: expands one word; whitespace is kept. Throws `EXPANSION_FAILED` for a
 * bad substitution, an unterminated quote or `${…}`, and for `${V:?msg}` / `${V?msg}` when V is
 * empty / unset (`details.reason` holds the message), and when the value or the work would pass
 * `limits.ts`'s bounds (`details.limit`, `details.variable`).
 */
export function processWord(word: string, env: ShellEnv, options: ExpandOptions = {}): WordExpansion {
  const r = new Lexer(word, env, options).run()
  return { value: r.result, used: r.used, unset: r.unset }
}

/**
 * BuildKit's `ProcessWords`: expands, then splits into words on unquoted whitespace (including
 * whitespace that came from an unquoted expansion); quotes are removed.
 */
export function processWords(word: string, env: ShellEnv, options: ExpandOptions = {}): WordsExpansion {
  const r = new Lexer(word, env, options).run()
  return { words: r.words, used: r.used, unset: r.unset }
}

