/**
 * The regular expression moby/patternmatcher makes of a `.dockerignore` pattern (a star becomes
 * "any run without '/'", `?` "one character but '/'", a double star "any run of directories" or, at
 * the end, "anything"; `[…]` and `\x` are passed through), matched without building a RegExp: a
 * backtracking engine takes exponential time on a pattern of twelve double-star segments. The
 * pattern becomes a small automaton whose states are simulated as a set, so one path costs at most
 * (path length × pattern length) steps, as with Go's RE2.
 *
 * Go's regexp semantics are kept where they differ from JavaScript's: `.` stops only at `\n`;
 * `\d \s \w` (and their negations) are ASCII; `\a \f \t \n \r \v` are control characters; `^` is
 * the start of the path. The escapes Go accepts that no real pattern uses (`\b`, `\pL`, `\x41`, an
 * octal, `\Q…\E`, `[[:alpha:]]`) and a star or `?` inside `[…]` are rejected.
 */

type Pred = (c: number) => boolean

/** An automaton state: consume one character, branch without consuming, assert the start, or accept. */
type State =
  | { readonly t: 'char'; readonly pred: Pred; next: number }
  | { readonly t: 'split'; a: number; b: number }
  | { readonly t: 'bol'; next: number }
  | { readonly t: 'match' }

/** A pattern the automaton cannot take; the caller makes it INVALID_ARGUMENT. */
export class UnsupportedPatternError extends Error {}

const NEWLINE = 0x0a
const SLASH = 0x2f
const notSlash: Pred = (c) => c !== SLASH
const notNewline: Pred = (c) => c !== NEWLINE
const isAsciiDigit = (c: number): boolean => c >= 0x30 && c <= 0x39
const isAsciiSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d && c !== 0x0b)
const isAsciiWord = (c: number): boolean => isAsciiDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f
const isAsciiAlnum = (c: number): boolean => isAsciiWord(c) && c !== 0x5f

/** Go's `\d \D \s \S \w \W` (RE2's Perl classes, ASCII only). */
const PERL: Readonly<Record<string, Pred>> = {
  d: isAsciiDigit,
  D: (c) => !isAsciiDigit(c),
  s: isAsciiSpace,
  S: (c) => !isAsciiSpace(c),
  w: isAsciiWord,
  W: (c) => !isAsciiWord(c),
}
const CONTROL: Readonly<Record<string, number>> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 }

/** An escape `\x` as Go's regexp reads it: a literal, or one of the Perl classes. */
function escape(x: string, pattern: string): Pred {
  const c = x.codePointAt(0)!
  if (c < 0x80 && !isAsciiAlnum(c)) return (r) => r === c
  const perl = PERL[x]
  if (perl) return perl
  const ctl = CONTROL[x]
  if (ctl !== undefined) return (r) => r === ctl
  throw new UnsupportedPatternError(`unsupported escape \\${x} in ${JSON.stringify(pattern)}`)
}

/** A compiled ignore pattern. */
export class IgnoreAutomaton {
  readonly #states: State[] = []
  readonly #start: number

  /** `pattern`: cleaned, without its `!`. */
  constructor(pattern: string) {
    const chars = Array.from(pattern)
    const s = this.#states
    // Each piece is appended with a dangling exit, patched to the next piece's start.
    const exits: Array<(to: number) => void> = []
    let start = -1
    const begin = (id: number): void => {
      if (start < 0) start = id
      for (const e of exits.splice(0)) e(id)
    }
    const char = (pred: Pred): void => {
      const id = s.push({ t: 'char', pred, next: -1 }) - 1
      begin(id)
      exits.push((to) => ((s[id] as { next: number }).next = to))
    }
    const star = (pred: Pred): void => {
      const split = s.push({ t: 'split', a: -1, b: -1 }) - 1
      const body = s.push({ t: 'char', pred, next: split }) - 1
      ;(s[split] as { a: number }).a = body
      begin(split)
      exits.push((to) => ((s[split] as { b: number }).b = to))
    }
    for (let i = 0; i < chars.length; ) {
      const ch = chars[i++]!
      if (ch === '*') {
        if (chars[i] === '*') {
          i++
          if (chars[i] === '/') i++
          if (i >= chars.length) star(notNewline)
          else {
            // `(.*/)?`: skip, or any run then a '/'.
            const split = s.push({ t: 'split', a: -1, b: -1 }) - 1
            begin(split)
            exits.push((to) => ((s[split] as { b: number }).b = to))
            const inner = exits.splice(0)
            star(notNewline)
            ;(s[split] as { a: number }).a = s.length - 2
            char((c) => c === SLASH)
            exits.push(...inner)
          }
        } else star(notSlash)
      } else if (ch === '?') {
        char(notSlash)
      } else if (ch === '\\') {
        // A trailing '\' cannot get here: filepath.Match rejects the pattern first.
        char(escape(chars[i++] ?? '\\', pattern))
      } else if (ch === '[') {
        i = this.#bracket(chars, i, pattern, char)
      } else if (ch === '^') {
        const id = s.push({ t: 'bol', next: -1 }) - 1
        begin(id)
        exits.push((to) => ((s[id] as { next: number }).next = to))
      } else {
        // Everything else, the characters patternmatcher escapes included, is itself.
        const c = ch.codePointAt(0)!
        char((r) => r === c)
      }
    }
    const match = s.push({ t: 'match' }) - 1
    begin(match)
    this.#start = start
  }

  /** A `[…]` class from `chars[i]` (just after '['); returns the index after its ']'. */
  #bracket(chars: string[], from: number, pattern: string, char: (pred: Pred) => void): number {
    let i = from
    let negated = false
    if (chars[i] === '^') {
      negated = true
      i++
    }
    const items: Pred[] = []
    const one = (): { pred: Pred; cp?: number } => {
      const c = chars[i++]
      if (c === undefined) throw new UnsupportedPatternError(`unterminated [ in ${JSON.stringify(pattern)}`)
      if (c === '*' || c === '?' || (c === '[' && chars[i] === ':')) throw new UnsupportedPatternError(`unsupported ${c} inside [] in ${JSON.stringify(pattern)}`)
      if (c === '\\') {
        const x = chars[i++] ?? ''
        const cp = x.codePointAt(0) ?? -1
        const pred = escape(x, pattern)
        return PERL[x] ? { pred } : { pred, cp: CONTROL[x] ?? cp }
      }
      const cp = c.codePointAt(0)!
      return { pred: (r) => r === cp, cp }
    }
    for (;;) {
      if (chars[i] === ']' && items.length > 0) {
        i++
        break
      }
      const lo = one()
      if (chars[i] === '-' && chars[i + 1] !== ']' && lo.cp !== undefined) {
        i++
        const hi = one()
        if (hi.cp === undefined || hi.cp < lo.cp) throw new UnsupportedPatternError(`invalid range in ${JSON.stringify(pattern)}`)
        const a = lo.cp
        const b = hi.cp
        items.push((r) => r >= a && r <= b)
      } else items.push(lo.pred)
    }
    // regexp.Compile's Perl flags include ClassNL: a negated class matches '\n', as `[^/]` does.
    char(negated ? (r) => !items.some((p) => p(r)) : (r) => items.some((p) => p(r)))
    return i
  }

  /**
   * Whether the whole of `path` matches, or (with `parents`) any of its parent directories: the
   * prefixes ending just before a '/', all found in the same pass.
   */
  matches(path: string, parents: boolean): boolean {
    const s = this.#states
    let cur: number[] = []
    let next: number[] = []
    const seen = new Int32Array(s.length)
    let gen = 0
    let hasMatch = false
    const add = (list: number[], id: number, pos: number): void => {
      // An explicit stack: `(.*/)?` chains nest splits as deep as the pattern is long.
      const stack = [id]
      while (stack.length > 0) {
        const x = stack.pop()!
        if (seen[x] === gen) continue
        seen[x] = gen
        const st = s[x]!
        if (st.t === 'split') stack.push(st.b, st.a)
        else if (st.t === 'bol') {
          if (pos === 0) stack.push(st.next)
        } else {
          if (st.t === 'match') hasMatch = true
          list.push(x)
        }
      }
    }
    gen++
    add(cur, this.#start, 0)
    for (let pos = 0; pos < path.length; ) {
      const c = path.codePointAt(pos)!
      if (parents && c === SLASH && hasMatch) return true
      if (cur.length === 0) return false
      pos += c > 0xffff ? 2 : 1
      gen++
      hasMatch = false
      next.length = 0
      for (const x of cur) {
        const st = s[x]!
        if (st.t === 'char' && st.pred(c)) add(next, st.next, pos)
      }
      const t = cur
      cur = next
      next = t
    }
    return hasMatch
  }
}
