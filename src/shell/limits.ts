/**
 * Bounds on word expansion. BuildKit's lexer (`frontend/dockerfile/shell/lex.go`) has none: 24
 * lines of `ARG a2=${a1}${a1}` ask it for 16 Mi copies of a value, and its patterns run on Go's
 * linear-time regexp. Ours are chosen far above what a real Dockerfile expands (a line is at most
 * 64 KiB) and low enough that the worst input stops within a fraction of a second, so the event
 * loop is free again before a Ctrl-C has to wait:
 *
 * - {@link MAX_WORD_CHARS}: no expanded value (a word, a `${…}` result, a pattern replacement)
 *   grows past 1 MiB (UTF-16 code units).
 * - {@link EXPANSION_WORK}: the characters expansion produces and the steps its pattern matching
 *   takes, summed over one word, or over a whole Dockerfile (or build) when the caller shares one
 *   {@link ExpansionBudget} between its words: 2^24 units, a quarter of a second of work or less.
 *
 * Going past either is `EXPANSION_FAILED` with `details.limit` naming which and `details.variable`
 * the `${…}` being expanded.
 */

/** The longest expanded value, in UTF-16 code units. */
export const MAX_WORD_CHARS = 1 << 20

/** Work units (characters produced + pattern-matching steps) one budget allows. */
export const EXPANSION_WORK = 1 << 24

/**
 * Work left for expansion: share one between the words of a Dockerfile (or of a build) to bound
 * their sum, not only each word.
 */
export class ExpansionBudget {
  #left: number
  readonly total: number

  constructor(total: number = EXPANSION_WORK) {
    this.total = total
    this.#left = total
  }

  /** Takes `units`; false (and nothing left) when they were not there. */
  take(units: number): boolean {
    this.#left -= units
    if (this.#left >= 0) return true
    this.#left = 0
    return false
  }

  get left(): number {
    return this.#left
  }
}

/** Which bound an expansion hit (`details.limit`). */
export type ExpansionLimit = 'word-size' | 'work'

/** Thrown inside the expander when a bound is hit; the lexer turns it into EXPANSION_FAILED. */
export class ExpansionLimitError extends Error {
  readonly limit: ExpansionLimit
  constructor(limit: ExpansionLimit) {
    super(
      limit === 'word-size'
        ? `expanded value longer than ${MAX_WORD_CHARS} characters`
        : `expansion work over its budget of ${EXPANSION_WORK} units`,
    )
    this.limit = limit
  }
}
