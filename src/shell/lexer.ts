/**
 * The machine behind `expand.ts`: BuildKit's shellWord (processStopOn, processDollar, quotes,
 * processName) run on an explicit stack of frames rather than by recursion, so
 * `${a:-${b:-${c:-…}}}` nested ten thousand deep expands without exhausting the JavaScript stack
 * (Go's stacks grow; ours do not). Values grow at most to `limits.ts`'s bounds, and the work they
 * take is charged to an {@link ExpansionBudget}.
 */
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { ExpandOptions, ShellEnv } from './expand-options.js'
import { chr, isDigit, isGoSpace, isLetter, isSpecialParam } from './chars.js'
import { ExpansionBudget, ExpansionLimitError, MAX_WORD_CHARS } from './limits.js'
import { compileShellPattern, replaceAllGo, replaceFirst, trimPatternPrefix, trimPatternSuffix, type ShellPattern } from './pattern.js'

const EOF = -1
const ch = {
  dollar: 0x24,
  lt: 0x3c,
  squote: 0x27,
  dquote: 0x22,
  lbrace: 0x7b,
  rbrace: 0x7d,
  colon: 0x3a,
  plus: 0x2b,
  minus: 0x2d,
  question: 0x3f,
  hash: 0x23,
  percent: 0x25,
  slash: 0x2f,
} as const

/** One processStopOn call: reads up to `stop` (or the end), building a result and its words. */
interface WordFrame {
  readonly t: 'word'
  readonly stop: number
  readonly savedRawEscapes: boolean
  result: string
  words: string[]
  inWord: boolean
}
/** One processDoubleQuote call. */
interface QuoteFrame {
  readonly t: 'dquote'
  result: string
}
/** One `${name<mod>word}` waiting for its word (or for the pattern / replacement of `${name/…/…}`). */
interface DollarFrame {
  readonly t: 'dollar'
  readonly name: string
  readonly modifier: number
  readonly modifierText: string
  readonly nullIsUnset: boolean
  phase: 'word' | 'pattern' | 'replacement'
  replaceAll: boolean
  pattern: string
}
type Frame = WordFrame | QuoteFrame | DollarFrame

export class Lexer {
  readonly #src: string
  readonly #env: ShellEnv
  readonly #escape: number
  readonly #skipUnset: boolean
  readonly #rawQuotes: boolean
  readonly #skipQuotes: boolean
  #rawEscapes: boolean
  #pos: number
  /** BuildKit's words buffer is one per lexer, shared (and reset) by nested words: kept so. */
  #buf = ''
  readonly #stack: Frame[] = []
  readonly #used = new Set<string>()
  readonly #unset = new Set<string>()
  readonly #budget: ExpansionBudget
  /** How long a value may grow: the cap, or the word itself when it is longer (a big heredoc). */
  readonly #maxChars: number
  /** The variable whose value was last looked up, named when a bound is hit. */
  #variable = ''

  constructor(src: string, env: ShellEnv, o: ExpandOptions) {
    this.#budget = o.budget ?? new ExpansionBudget()
    this.#maxChars = Math.max(MAX_WORD_CHARS, src.length)
    this.#src = src
    this.#env = env
    this.#escape = (o.escapeToken ?? '\\').codePointAt(0)!
    this.#skipUnset = o.skipUnsetEnv ?? false
    this.#rawQuotes = o.rawQuotes ?? false
    this.#rawEscapes = o.rawEscapes ?? false
    this.#skipQuotes = o.skipProcessQuotes ?? false
    // text/scanner skips a byte order mark as the very first character.
    this.#pos = src.startsWith('\uFEFF') ? 1 : 0
  }

  #peek(): number {
    return this.#pos < this.#src.length ? this.#src.codePointAt(this.#pos)! : EOF
  }

  #next(): number {
    const c = this.#peek()
    if (c !== EOF) this.#pos += c > 0xffff ? 2 : 1
    return c
  }

  run(): { result: string; words: string[]; used: Set<string>; unset: Set<string> } {
    try {
      this.#pushWord(EOF, this.#rawEscapes)
      for (;;) {
        const done = this.#step()
        if (done) return { ...done, used: this.#used, unset: this.#unset }
      }
    } catch (e) {
      if (e instanceof ExpansionLimitError) {
        const variable = this.#variable
        throw new ImagesmithError(
          ErrorCodes.EXPANSION_FAILED,
          `failed to process ${JSON.stringify(clip(this.#src))}: ${e.message}${variable ? ` (expanding $${variable})` : ''}`,
          { word: clip(this.#src), reason: e.message, limit: e.limit, ...(variable ? { variable } : {}) },
        )
      }
      if (!(e instanceof LexError)) throw e
      const reason = this.#unwindMessage(e.message)
      throw new ImagesmithError(ErrorCodes.EXPANSION_FAILED, `failed to process ${JSON.stringify(this.#src)}: ${reason}`, {
        word: this.#src,
        reason,
      })
    }
  }

  /** What processDollar makes of an error its word returned, innermost first. */
  #unwindMessage(message: string): string {
    let m = message
    const atEof = this.#peek() === EOF
    for (let i = this.#stack.length - 1; i >= 0; i--) {
      const f = this.#stack[i]!
      if (f.t !== 'dollar' || !atEof) continue
      m = f.phase === 'pattern' ? "syntax error: missing '/' in ${}" : "syntax error: missing '}'"
    }
    return m
  }

  #pushWord(stop: number, rawEscapes: boolean): void {
    this.#stack.push({ t: 'word', stop, savedRawEscapes: this.#rawEscapes, result: '', words: [], inWord: false })
    this.#rawEscapes = rawEscapes
    this.#buf = ''
  }

  /** Runs until a frame completes; returns the outcome when the outermost word is done. */
  #step(): { result: string; words: string[] } | undefined {
    const top = this.#stack[this.#stack.length - 1]!
    if (top.t === 'word') return this.#stepWord(top)
    if (top.t === 'dquote') {
      this.#stepQuote(top)
      return undefined
    }
    throw new Error('dollar frame on top of the stack')
  }

  #stepWord(f: WordFrame): { result: string; words: string[] } | undefined {
    for (;;) {
      const c = this.#peek()
      if (c === EOF || (f.stop !== EOF && c === f.stop)) {
        if (c === EOF && f.stop !== EOF) {
          throw new LexError(`unexpected end of statement while looking for matching ${chr(f.stop)}`)
        }
        if (c !== EOF) this.#next()
        const words = this.#getWords(f)
        this.#stack.pop()
        this.#rawEscapes = f.savedRawEscapes
        if (this.#stack.length === 0) return { result: f.result, words }
        this.#deliver(f.result)
        return undefined
      }
      if (c === ch.dollar) {
        if (this.#startDollar()) return undefined
        continue
      }
      if (c === ch.lt) {
        const tmp = this.#possibleHeredoc()
        f.result += tmp
        this.#addRawString(f, tmp)
        continue
      }
      if (!this.#skipQuotes && c === ch.squote) {
        const tmp = this.#singleQuote()
        f.result += tmp
        this.#addRawString(f, tmp)
        continue
      }
      if (!this.#skipQuotes && c === ch.dquote) {
        this.#next()
        this.#stack.push({ t: 'dquote', result: this.#rawQuotes ? '"' : '' })
        return undefined
      }
      let x = this.#next()
      if (x === this.#escape) {
        if (this.#rawEscapes) {
          this.#addRawChar(f, x)
          f.result += chr(x)
        }
        x = this.#next()
        if (x === EOF) continue
        this.#addRawChar(f, x)
      } else {
        this.#addChar(f, x)
      }
      f.result += chr(x)
    }
  }

  #stepQuote(f: QuoteFrame): void {
    for (;;) {
      const c = this.#peek()
      if (c === EOF) throw new LexError('unexpected end of statement while looking for matching double-quote')
      if (c === ch.dquote) {
        this.#next()
        if (this.#rawQuotes) f.result += '"'
        this.#stack.pop()
        this.#deliver(f.result)
        return
      }
      if (c === ch.dollar) {
        if (this.#startDollar()) return
        continue
      }
      let x = this.#next()
      if (x === this.#escape) {
        if (this.#rawEscapes) f.result += chr(x)
        const p = this.#peek()
        if (p === EOF) continue
        if (p === ch.dquote || p === ch.dollar || p === this.#escape) x = this.#next()
      }
      f.result += chr(x)
    }
  }

  /**
   * A value computed by the frame just popped goes to the frame below: into a word (as an
   * expansion when it came from `$`, raw when from quotes), a double-quoted string, or the
   * `${…}` that was waiting for it.
   */
  #deliver(value: string, fromDollar = false): void {
    let v = value
    let dollar = fromDollar
    for (;;) {
      const parent = this.#stack[this.#stack.length - 1]!
      // Only the outermost word walks a value character by character (to split it); inner frames
      // join strings, which V8 does without copying, so they cost one unit however long.
      if (parent.t !== 'dollar') this.#grow(parent.result.length, v.length, parent.t === 'word' && this.#splits(parent) ? v.length : 1)
      if (parent.t === 'word') {
        parent.result += v
        if (dollar) this.#addString(parent, v)
        else this.#addRawString(parent, v)
        return
      }
      if (parent.t === 'dquote') {
        parent.result += v
        return
      }
      const done = this.#continueDollar(parent, v)
      if (done === undefined) return
      v = done
      dollar = true
    }
  }

  /**
   * processDollar up to the point where it needs a nested word. Returns true when it pushed a
   * frame (the caller must yield to the main loop), false when it delivered its value at once.
   */
  #startDollar(): boolean {
    this.#next()
    if (this.#peek() !== ch.lbrace) {
      const name = this.#name()
      if (name === '') {
        this.#deliverDollar('$')
        return false
      }
      const v = this.#getEnv(name)
      this.#deliverDollar(v === undefined && this.#skipUnset ? `$${name}` : (v ?? ''))
      return false
    }
    this.#next()
    const p = this.#peek()
    if (p === EOF) throw new LexError("syntax error: missing '}'")
    if (p === ch.lbrace || p === ch.rbrace || p === ch.colon) throw new LexError('syntax error: bad substitution')
    const name = this.#name()
    let c = this.#next()
    let text = chr(c)
    if (c === ch.rbrace) {
      const v = this.#getEnv(name)
      this.#deliverDollar(v === undefined && this.#skipUnset ? `\${${name}}` : (v ?? ''))
      return false
    }
    if (c === ch.slash) {
      const replaceAll = this.#peek() === ch.slash
      if (replaceAll) this.#next()
      this.#stack.push({ t: 'dollar', name, modifier: c, modifierText: text, nullIsUnset: false, phase: 'pattern', replaceAll, pattern: '' })
      this.#pushWord(ch.slash, true)
      return true
    }
    let nullIsUnset = false
    if (c === ch.colon) {
      // Go's `fallthrough`: whatever follows the colon takes the modifier branch.
      nullIsUnset = true
      c = this.#next()
      text += chr(c)
    } else if (c !== ch.plus && c !== ch.minus && c !== ch.question && c !== ch.hash && c !== ch.percent) {
      throw new LexError(`unsupported modifier (${text}) in substitution`)
    }
    const rawEscapes = c === ch.hash || c === ch.percent
    if (nullIsUnset && rawEscapes) throw new LexError(`unsupported modifier (${text}) in substitution`)
    this.#stack.push({ t: 'dollar', name, modifier: c, modifierText: text, nullIsUnset, phase: 'word', replaceAll: false, pattern: '' })
    this.#pushWord(ch.rbrace, rawEscapes)
    return true
  }

  /** `added` characters join a value of `length` at a cost of `units`; throws at a bound. */
  #grow(length: number, added: number, units: number): void {
    if (length + added > this.#maxChars) throw new ExpansionLimitError('word-size')
    if (!this.#budget.take(units)) throw new ExpansionLimitError('work')
  }

  /** A `$…` value computed without a nested frame goes to the frame on top. */
  #deliverDollar(v: string): void {
    this.#deliver(v, true)
  }

  /** The rest of processDollar once its word is read; undefined when it pushed another word. */
  #continueDollar(f: DollarFrame, word: string): string | undefined {
    if (f.phase === 'pattern') {
      f.pattern = word
      f.phase = 'replacement'
      this.#pushWord(ch.rbrace, true)
      return undefined
    }
    this.#stack.pop()
    const value = this.#getEnv(f.name)
    const set = value !== undefined
    if (f.phase === 'replacement') {
      if (this.#skipUnset && !set) return `\${${f.name}/${f.pattern}/${word}}`
      let p: ShellPattern
      try {
        p = compileShellPattern(f.pattern, this.#budget)
      } catch (e) {
        if (e instanceof ExpansionLimitError) throw e
        throw new LexError(`invalid pattern (${f.pattern}) in substitution: ${(e as Error).message}`)
      }
      this.#variable = f.name
      return f.replaceAll ? replaceAllGo(p, value ?? '', word, this.#budget) : replaceFirst(p, value ?? '', word, this.#budget)
    }
    if (this.#skipUnset && !set) return `\${${f.name}${f.modifierText}${word}}`
    const empty = !set || (f.nullIsUnset && value === '')
    switch (f.modifier) {
      case ch.minus:
        return empty ? word : value!
      case ch.plus:
        return empty ? '' : word
      case ch.question:
        if (!set) throw new LexError(`${f.name}: ${word !== '' ? word : 'is not allowed to be unset'}`)
        if (f.nullIsUnset && value === '') throw new LexError(`${f.name}: ${word !== '' ? word : 'is not allowed to be empty'}`)
        return value
      case ch.hash:
      case ch.percent: {
        const mark = chr(f.modifier)
        const greedy = word.startsWith(mark)
        const pattern = greedy ? word.slice(1) : word
        this.#variable = f.name
        try {
          return f.modifier === ch.percent
            ? trimPatternSuffix(pattern, value ?? '', greedy, this.#budget)
            : trimPatternPrefix(pattern, value ?? '', greedy, this.#budget)
        } catch (e) {
          if (e instanceof ExpansionLimitError) throw e
          throw new LexError(`invalid pattern (${pattern}) in substitution: ${(e as Error).message}`)
        }
      }
      default:
        throw new LexError(`unsupported modifier (${f.modifierText}) in substitution`)
    }
  }

  #name(): string {
    const start = this.#pos
    for (;;) {
      const c = this.#peek()
      if (c === EOF) break
      if (this.#pos === start && isDigit(c)) {
        while (this.#peek() !== EOF && isDigit(this.#peek())) this.#next()
        return this.#src.slice(start, this.#pos)
      }
      if (this.#pos === start && isSpecialParam(c)) {
        this.#next()
        return chr(c)
      }
      if (!isLetter(c) && !isDigit(c) && c !== 0x5f) break
      this.#next()
    }
    return this.#src.slice(start, this.#pos)
  }

  #singleQuote(): string {
    this.#next()
    let out = this.#rawQuotes ? "'" : ''
    for (;;) {
      const c = this.#next()
      if (c === EOF) throw new LexError('unexpected end of statement while looking for matching single-quote')
      if (c === ch.squote) return this.#rawQuotes ? `${out}'` : out
      out += chr(c)
    }
  }

  /** `<<` and the blanks after it stay one unit so a heredoc word is not split. */
  #possibleHeredoc(): string {
    this.#next()
    if (this.#peek() !== ch.lt) return '<'
    this.#next()
    let out = '<<'
    for (let c = this.#peek(); c === 0x09 || c === 0x0d || c === 0x20; c = this.#peek()) out += chr(this.#next())
    return out
  }

  #getEnv(name: string): string | undefined {
    this.#variable = name
    const env = this.#env
    let v: string | undefined
    if (typeof env === 'function') v = env(name)
    else if (env instanceof Map) v = (env as ReadonlyMap<string, string>).get(name)
    else v = Object.hasOwn(env, name) ? (env as Readonly<Record<string, string>>)[name] : undefined
    if (v === undefined) this.#unset.add(name)
    else this.#used.add(name)
    return v
  }

  /**
   * Only the outermost word's words are returned: a nested word's are dropped by BuildKit, and
   * its use of the shared buffer ends with the buffer empty. So nested words skip the splitting,
   * which would otherwise rescan every inner value at every level (quadratic in the nesting).
   */
  #splits(f: WordFrame): boolean {
    return this.#stack[0] === f
  }

  #addChar(f: WordFrame, c: number): void {
    if (!this.#splits(f)) return
    if (isGoSpace(c)) {
      if (f.inWord && this.#buf.length !== 0) {
        f.words.push(this.#buf)
        this.#buf = ''
        f.inWord = false
      }
    } else {
      this.#addRawChar(f, c)
    }
  }

  #addRawChar(f: WordFrame, c: number): void {
    if (!this.#splits(f)) return
    this.#buf += chr(c)
    f.inWord = true
  }

  #addString(f: WordFrame, s: string): void {
    if (!this.#splits(f)) return
    for (let i = 0; i < s.length; ) {
      const c = s.codePointAt(i)!
      this.#addChar(f, c)
      i += c > 0xffff ? 2 : 1
    }
  }

  #addRawString(f: WordFrame, s: string): void {
    if (!this.#splits(f)) return
    this.#buf += s
    f.inWord = true
  }

  #getWords(f: WordFrame): string[] {
    if (!this.#splits(f)) {
      this.#buf = ''
      return f.words
    }
    if (this.#buf.length > 0) {
      f.words.push(this.#buf)
      this.#buf = ''
      f.inWord = false
    }
    return f.words
  }
}

/** A word quoted in an error: its first 200 characters (a word may be a 64 KiB line). */
function clip(word: string): string {
  return word.length > 200 ? `${word.slice(0, 200)}…` : word
}

/** A lexing failure inside the machine; turned into one typed error at the top. */
class LexError extends Error {}
