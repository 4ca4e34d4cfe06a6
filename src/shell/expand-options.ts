// What a word expands against and how: shared by the lexer and its entry points in expand.ts.
import type { ExpansionBudget } from './limits.js'

/** The escape characters a Dockerfile may use (`# escape=`). */
export type EscapeToken = '\\' | '`'

/**
 * Variables to expand against: a Map, a plain record (own properties only) or a lookup function
 * returning undefined for an unset name. Names are case-sensitive, as on Linux.
 */
export type ShellEnv =
  | ReadonlyMap<string, string>
  | Readonly<Record<string, string>>
  | ((name: string) => string | undefined)

/** How the lexer treats quotes, escapes and unset variables; BuildKit's `Lex` fields. */
export interface ExpandOptions {
  /** @default '\\' */
  readonly escapeToken?: EscapeToken
  /** Keep `$X`, `${X}`, `${X:-w}` as written when X is unset, instead of expanding to empty. @default false */
  readonly skipUnsetEnv?: boolean
  /** Keep the quote characters in the result. @default false */
  readonly rawQuotes?: boolean
  /** Keep the escape characters in the result. @default false */
  readonly rawEscapes?: boolean
  /** Quotes are ordinary characters. @default false */
  readonly skipProcessQuotes?: boolean
  /**
   * Work this expansion may take (`limits.ts`); share one between the words of a Dockerfile to bound
   * their sum. @default a fresh budget per word
   */
  readonly budget?: ExpansionBudget
}
