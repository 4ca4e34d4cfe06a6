/**
 * The shell patterns of `${V#pat}`, `${V%pat}`, `${V/pat/repl}` as BuildKit's lexer evaluates
 * them: `*` and `?` wildcards (no bracket expressions), matched as Go's `regexp` matches the
 * expression BuildKit's convertShellPatternToRegex makes of them (leftmost-first, `*` greedy or
 * lazy, neither `*` nor `?` crossing a `\n`), and Go's replace semantics where they differ from
 * JavaScript's.
 *
 * No regular expression is built from the pattern: a backtracking engine takes exponential time on
 * `*a*a*a*a*b`. The matcher below simulates the pattern's automaton over a set of states, each
 * thread in Go's priority order (a Pike VM, as RE2 does), so one search costs at most
 * (value length × pattern length) steps, and every step is charged to the expansion budget.
 */
import { ExpansionLimitError, MAX_WORD_CHARS, type ExpansionBudget } from './limits.js'

/** A pattern token: a code point to match literally, or one of these. */
const STAR = -1
const ANY = -2
const NEWLINE = 0x0a

/** A shell pattern ready to match: its tokens, runs of `*` folded into one (same matches). */
export interface ShellPattern {
  readonly toks: Int32Array
}

/**
 * BuildKit's convertShellPatternToRegex, producing tokens instead of a regular expression. Throws
 * `invalid escape` where Go's does. Its length is charged: a pattern may be a long expanded value.
 */
export function compileShellPattern(pattern: string, budget: ExpansionBudget): ShellPattern {
  if (!budget.take(pattern.length)) throw new ExpansionLimitError('work')
  const chars = Array.from(pattern.startsWith('\uFEFF') ? pattern.slice(1) : pattern)
  const toks: number[] = []
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i]!
    if (tok === '*') {
      if (toks[toks.length - 1] !== STAR) toks.push(STAR)
      continue
    }
    if (tok === '?') {
      toks.push(ANY)
      continue
    }
    if (tok === '\\') {
      // `}` and `/` are escaped only to get them past the `${…}` lexer.
      const peek = chars[i + 1]
      if (peek === '}' || peek === '/') continue
      i++
      const esc = chars[i] ?? ''
      if (esc !== '*' && esc !== '?' && esc !== '\\') throw new Error(`invalid escape '\\${esc}'`)
      toks.push(esc.codePointAt(0)!)
      continue
    }
    toks.push(tok.codePointAt(0)!)
  }
  return { toks: Int32Array.from(toks) }
}

/** The two queues a search steps between. */
export function threadQueues(p: ShellPattern): [Threads, Threads] {
  return [new Threads(p.toks.length + 1), new Threads(p.toks.length + 1)]
}

/** One queue of threads: a pattern position and where its match started, in priority order. */
export class Threads {
  readonly pcs: Int32Array
  readonly starts: Int32Array
  n = 0
  readonly #seen: Int32Array
  #gen = 1

  constructor(size: number) {
    this.pcs = new Int32Array(size)
    this.starts = new Int32Array(size)
    this.#seen = new Int32Array(size)
  }

  clear(): void {
    this.n = 0
    this.#gen++
  }

  /** Adds the thread unless one of higher priority is already at `pc` (Go's sparse-set check). */
  push(pc: number, start: number): void {
    if (this.#seen[pc] === this.#gen) return
    this.#seen[pc] = this.#gen
    this.pcs[this.n] = pc
    this.starts[this.n] = start
    this.n++
  }
}

/**
 * The leftmost-first match of `p` in `s` at or after `from` (only at `from` when anchored), as
 * `[start, end]` in UTF-16 indices, or undefined. `greedy` picks `.*` over `.*?` for every `*`.
 * `queues` are reused across the searches of one replacement.
 */
export function findMatch(
  p: ShellPattern,
  s: string,
  from: number,
  greedy: boolean,
  anchored: boolean,
  budget: ExpansionBudget,
  queues: [Threads, Threads] = threadQueues(p),
): [number, number] | undefined {
  const toks = p.toks
  const m = toks.length
  let [run, next] = queues
  run.clear()
  // Go's `add`: follow the empty moves from `pc` in priority order.
  const add = (q: Threads, pc: number, start: number): void => {
    if (pc < m && toks[pc] === STAR) {
      // The loop's body first when greedy, the way out first when lazy; runs of `*` are folded,
      // so the way out is never another star.
      if (greedy) {
        q.push(pc, start)
        q.push(pc + 1, start)
      } else {
        q.push(pc + 1, start)
        q.push(pc, start)
      }
    } else q.push(pc, start)
  }
  let match: [number, number] | undefined
  for (let pos = from; ; ) {
    if (run.n === 0 && (match !== undefined || (anchored && pos !== from))) break
    if (match === undefined && (!anchored || pos === from)) add(run, 0, pos)
    const c = pos < s.length ? s.codePointAt(pos)! : -1
    const width = c > 0xffff ? 2 : 1
    next.clear()
    if (!budget.take(run.n + 1)) throw new ExpansionLimitError('work')
    for (let i = 0; i < run.n; i++) {
      const pc = run.pcs[i]!
      const start = run.starts[i]!
      if (pc === m) {
        // First-match mode: this thread beats every one after it.
        match = [start, pos]
        break
      }
      if (c < 0) continue
      const tok = toks[pc]!
      if (tok === STAR) {
        if (c !== NEWLINE) add(next, pc, start)
      } else if (tok === ANY ? c !== NEWLINE : tok === c) add(next, pc + 1, start)
    }
    if (c < 0) break
    pos += width
    const t = run
    run = next
    next = t
  }
  return match
}

/** `${V#pat}` / `${V##pat}`: remove the shortest / longest prefix matching the pattern. */
export function trimPatternPrefix(pattern: string, value: string, greedy: boolean, budget: ExpansionBudget): string {
  const m = findMatch(compileShellPattern(pattern, budget), value, 0, greedy, true, budget)
  return m ? value.slice(m[1]) : value
}

/**
 * `${V%pat}` / `${V%%pat}`: the shortest rightmost match is found, as BuildKit does, by reversing
 * both the pattern and the value and applying the prefix rule.
 */
export function trimPatternSuffix(pattern: string, value: string, greedy: boolean, budget: ExpansionBudget): string {
  if (!budget.take(value.length)) throw new ExpansionLimitError('work')
  return reverseString(trimPatternPrefix(reversePattern(pattern), reverseString(value), greedy, budget))
}

/** Reverses a pattern but keeps each `\x` escape in front of its character. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern)
  const out = new Array<string>(chars.length)
  const last = chars.length - 1
  for (let i = 0; i <= last; ) {
    const tok = chars[i]!
    const o = last - i
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok
      out[o] = chars[i + 1]!
      i += 2
    } else {
      out[o] = tok
      i++
    }
  }
  return out.join('')
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('')
}

/** `${V/pat/repl}`: the first match replaced by the replacement, taken literally (Go splices it in). */
export function replaceFirst(p: ShellPattern, value: string, replacement: string, budget: ExpansionBudget): string {
  const m = findMatch(p, value, 0, true, false, budget)
  if (!m) return value
  return value.slice(0, m[0]) + replacement + value.slice(m[1])
}

/**
 * `${V//pat/repl}`: Go's Regexp.ReplaceAllString, whose loop differs from String.replace (an empty
 * match right after a match is skipped) and whose template knows `$0`, `${0}`, `$$` and names.
 */
export function replaceAllGo(p: ShellPattern, src: string, template: string, budget: ExpansionBudget): string {
  let out = ''
  let lastMatchEnd = 0
  let searchPos = 0
  const queues = threadQueues(p)
  while (searchPos <= src.length) {
    const m = findMatch(p, src, searchPos, true, false, budget, queues)
    if (!m) break
    const [start, end] = m
    const piece = end > lastMatchEnd || start === 0 ? expandTemplate(template, src.slice(start, end)) : ''
    // Each match adds a whole replacement: the output is bounded as it grows, not after.
    if (out.length + (start - lastMatchEnd) + piece.length > MAX_WORD_CHARS) throw new ExpansionLimitError('word-size')
    if (!budget.take(start - lastMatchEnd + piece.length)) throw new ExpansionLimitError('work')
    out += src.slice(lastMatchEnd, start) + piece
    lastMatchEnd = end
    const width = searchPos < src.length ? (src.codePointAt(searchPos)! > 0xffff ? 2 : 1) : 0
    if (searchPos + width > end) searchPos += width
    else if (searchPos + 1 > end) searchPos++
    else searchPos = end
  }
  return out + src.slice(lastMatchEnd)
}

/**
 * Go's Regexp.Expand for a pattern with no capture groups: only group 0 exists. Every `$0` copies
 * the match, so the result is bounded while it is built.
 */
function expandTemplate(template: string, match: string): string {
  let out = ''
  let t = template
  for (;;) {
    if (out.length > MAX_WORD_CHARS) throw new ExpansionLimitError('word-size')
    const at = t.indexOf('$')
    if (at < 0) break
    out += t.slice(0, at)
    t = t.slice(at + 1)
    if (t.startsWith('$')) {
      out += '$'
      t = t.slice(1)
      continue
    }
    const ref = extractRef(t)
    if (!ref) {
      out += '$'
      continue
    }
    t = t.slice(ref.length)
    if (ref.num === 0) out += match
  }
  return out + t
}

/** Go's regexp `extract`: `name` or `{name}` after a `$`; `num` is set when the name is all digits. */
function extractRef(t: string): { length: number; num: number | undefined } | undefined {
  let brace = false
  let s = t
  if (s.startsWith('{')) {
    brace = true
    s = s.slice(1)
  }
  let i = 0
  while (i < s.length) {
    const c = s.codePointAt(i)!
    const ch = String.fromCodePoint(c)
    if (!/[\p{L}\p{Nd}_]/u.test(ch)) break
    i += ch.length
  }
  if (i === 0) return undefined
  const name = s.slice(0, i)
  let length = i
  if (brace) {
    if (s[i] !== '}') return undefined
    length = i + 2
  }
  let num: number | undefined = 0
  for (const ch of name) {
    if (ch < '0' || ch > '9' || num! >= 1e8) {
      num = undefined
      break
    }
    num = num! * 10 + (ch.charCodeAt(0) - 48)
  }
  if (name.length > 1 && name[0] === '0') num = undefined
  return { length, num }
}
