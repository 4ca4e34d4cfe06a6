/**
 * `.dockerignore` exactly as Docker reads it: parsing as moby/patternmatcher/ignorefile.ReadAll,
 * matching as patternmatcher.MatchesOrParentMatches (later patterns win, `!` re-includes, `**`
 * spans directories, a leading '/' is dropped, patterns are `filepath.Clean`ed).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { BadPatternError, goClean, goMatch } from './glob.js'
import { IgnoreAutomaton, UnsupportedPatternError } from './ignore-nfa.js'

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp'

class Pattern {
  readonly cleaned: string
  readonly exclusion: boolean
  #type: MatchType
  #nfa: IgnoreAutomaton | undefined

  constructor(cleaned: string, exclusion: boolean) {
    this.cleaned = cleaned
    this.exclusion = exclusion
    this.#type = matchType(cleaned)
    if (this.#type === 'regexp') {
      try {
        this.#nfa = new IgnoreAutomaton(cleaned)
      } catch (e) {
        if (!(e instanceof UnsupportedPatternError)) throw e
        throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `invalid ignore pattern ${JSON.stringify(cleaned)}: ${e.message}`, { pattern: cleaned })
      }
    }
  }

  /** `path` or (with `parents`) one of its parent directories matches. */
  matchesOrParent(path: string, parents: boolean): boolean {
    if (this.#nfa) return this.#nfa.matches(path, parents)
    if (this.match(path)) return true
    if (!parents) return false
    for (let at = path.indexOf('/'); at >= 0; at = path.indexOf('/', at + 1)) if (this.match(path.slice(0, at))) return true
    return false
  }

  match(path: string): boolean {
    switch (this.#type) {
      case 'exact':
        return path === this.cleaned
      case 'prefix':
        return path.startsWith(this.cleaned.slice(0, -2))
      case 'suffix': {
        const suffix = this.cleaned.slice(2)
        if (path.endsWith(suffix)) return true
        return suffix[0] === '/' && path === suffix.slice(1)
      }
      case 'regexp':
        return this.#nfa!.matches(path, false)
    }
  }
}

/**
 * Which of patternmatcher's match types `compile` picks for the pattern; a `regexp` pattern is
 * matched by ignore-nfa.ts, which reads the same pattern the way Go's regexp reads what
 * patternmatcher makes of it.
 */
function matchType(pattern: string): MatchType {
  let type: MatchType = 'exact'
  const chars = Array.from(pattern)
  let i = 0
  for (let n = 0; i < chars.length; n++) {
    const ch = chars[i++]!
    if (ch === '*') {
      if (chars[i] === '*') {
        i++
        if (chars[i] === '/') i++
        if (i >= chars.length) type = type === 'exact' ? 'prefix' : 'regexp'
        else type = 'regexp'
        if (n === 0) type = 'suffix'
      } else type = 'regexp'
    } else if (ch === '?' || ch === '[' || ch === ']') {
      type = 'regexp'
    } else if (ch === '\\') {
      if (i < chars.length) {
        i++
        type = 'regexp'
      }
    }
  }
  return type
}

/** moby/patternmatcher.PatternMatcher. */
export class PatternMatcher {
  readonly patterns: readonly Pattern[]
  /** True when any pattern is an exception (`!…`): an excluded directory may then hold included files. */
  readonly exclusions: boolean

  constructor(patterns: readonly string[]) {
    const out: Pattern[] = []
    let exclusions = false
    for (const raw of patterns) {
      let p = raw.trim()
      if (p === '') continue
      p = goClean(p)
      let exclusion = false
      if (p[0] === '!') {
        if (p.length === 1) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, 'illegal exclusion pattern: "!"', { pattern: raw })
        exclusion = true
        exclusions = true
        p = p.slice(1)
      }
      try {
        goMatch(p, '.')
      } catch (e) {
        if (e instanceof BadPatternError) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `invalid ignore pattern ${JSON.stringify(raw)}: ${e.message}`, { pattern: raw })
        throw e
      }
      out.push(new Pattern(p, exclusion))
    }
    this.patterns = out
    this.exclusions = exclusions
  }

  get empty(): boolean {
    return this.patterns.length === 0
  }

  /** `MatchesOrParentMatches`: `file` is a '/'-separated path relative to the context. */
  matches(file: string): boolean {
    let matched = false
    const parents = file.includes('/')
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue
      if (pattern.matchesOrParent(file, parents)) matched = !pattern.exclusion
    }
    return matched
  }
}

/** ignorefile.ReadAll: one pattern a line, `#` comments, a leading '/' dropped, `!` kept. */
export function parseDockerignore(text: string): string[] {
  const out: string[] = []
  const lines = text.split(/\r?\n/)
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n]!
    if (n === 0 && line.charCodeAt(0) === 0xfeff) line = line.slice(1)
    if (line.startsWith('#')) continue
    let pattern = line.trim()
    if (pattern === '') continue
    const invert = pattern[0] === '!'
    if (invert) pattern = pattern.slice(1).trim()
    if (pattern.length > 0) {
      pattern = goClean(pattern)
      if (pattern.length > 1 && pattern[0] === '/') pattern = pattern.slice(1)
    }
    out.push(invert ? `!${pattern}` : pattern)
  }
  return out
}

/** The context's `.dockerignore` (empty when there is none). */
export function loadDockerignore(contextDir: string, override?: string): string[] {
  // BuildKit: a `<Dockerfile name>.dockerignore` beside the Dockerfile wins over the context's own.
  const text = (override !== undefined ? readIfThere(override) : undefined) ?? readIfThere(join(contextDir, '.dockerignore'))
  return text === undefined ? [] : parseDockerignore(text)
}

function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
}
