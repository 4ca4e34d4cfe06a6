/**
 * Hostile words, Dockerfiles and ignore patterns stop within bounded time and memory, with typed
 * errors: expansion's size and work bounds (shell/limits.ts), pattern matching without backtracking
 * (shell/pattern.ts, context/ignore-nfa.ts, context/glob.ts), lowering linear in the instructions.
 * Each timed case takes seconds to hours with a backtracking or quadratic implementation.
 */
import { describe, expect, it } from 'vitest'
import { PatternMatcher } from '../../src/context/dockerignore.js'
import { goMatch } from '../../src/context/glob.js'
import { MAX_DOCKERFILE_INSTRUCTIONS } from '../../src/dockerfile/import.js'
import { ErrorCodes, fromDockerfile, ImagesmithError } from '../../src/index.js'
import { processWord } from '../../src/shell/expand.js'
import { EXPANSION_WORK, ExpansionBudget, MAX_WORD_CHARS } from '../../src/shell/limits.js'
import { thrown } from '../helpers/thrown.js'

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t = performance.now()
  const value = fn()
  return { value, ms: performance.now() - t }
}

describe('expansion bounds', () => {
  it('stops a doubling ARG chain at the word-size bound, naming the variable and line', () => {
    const lines = ['FROM scratch', 'ARG a0=x']
    for (let i = 1; i <= 24; i++) lines.push(`ARG a${i}=\${a${i - 1}}\${a${i - 1}}`)
    const { value: e, ms } = timed(() => thrown(() => fromDockerfile(`${lines.join('\n')}\n`)))
    expect(e.code).toBe(ErrorCodes.EXPANSION_FAILED)
    // a20 holds 2^20 = MAX_WORD_CHARS characters: a21 = a20 + a20 is the first over.
    expect(e.details).toMatchObject({ limit: 'word-size', variable: 'a20', line: 23 })
    expect(ms).toBeLessThan(2000)
  })

  it('bounds what a replacement can make of a value', () => {
    const e = thrown(() => processWord('${v//?/xx}', { v: 'a'.repeat(MAX_WORD_CHARS / 2 + 1) }))
    expect(e.code).toBe(ErrorCodes.EXPANSION_FAILED)
    expect(e.details).toMatchObject({ limit: 'word-size', variable: 'v' })
    // Under the bound the same expansion is exact.
    expect(processWord('${v//?/xx}', { v: 'abc' }).value).toBe('xxxxxx')
  })

  it('shares one work budget between the words of a Dockerfile', () => {
    const budget = new ExpansionBudget()
    const env = { v: 'a'.repeat(1 << 19) }
    // Each word scans the whole value: alone well inside the budget, together over it.
    const e = thrown(() => {
      for (let i = 0; i < 64; i++) processWord('${v##*b}', env, { budget })
    })
    expect(e.details).toMatchObject({ limit: 'work', variable: 'v' })
    expect(budget.left).toBe(0)
    expect(processWord('${v##*b}', env).value.length).toBe(1 << 19)
    expect(EXPANSION_WORK).toBeGreaterThan(1 << 20)
  })

  it('matches ${v//*a*a*a*a*a*b/z} in linear time', () => {
    // A backtracking RegExp takes seconds at 64 characters and half a minute at 80.
    for (const n of [64, 80]) {
      const { value, ms } = timed(() => processWord('${v//*a*a*a*a*a*b/z}', { v: 'a'.repeat(n) }).value)
      expect(value).toBe('a'.repeat(n))
      expect(ms).toBeLessThan(1000)
    }
    expect(processWord('${v//*a*a*b/z}', { v: 'xaab-aab' }).value).toBe('z')
    expect(processWord('${v%%a*a*a*b}', { v: `${'a'.repeat(70)}b` }).value).toBe('')
    expect(processWord('${v#*a*a*a*a*a*b}', { v: 'a'.repeat(80) }).value).toBe('a'.repeat(80))
  })
})

describe('ignore and glob patterns without backtracking', () => {
  const deep = `${Array.from({ length: 20 }, (_, i) => `d${i}`).join('/')}/file`

  it('matches twelve **/ against a path 20 deep in linear time', () => {
    const { value, ms } = timed(() => [new PatternMatcher([`${'**/'.repeat(12)}y`]).matches(deep), new PatternMatcher([`${'**/'.repeat(12)}file`]).matches(deep)])
    expect(value).toEqual([false, true])
    expect(ms).toBeLessThan(1000)
    // A parent directory still counts, found in the same pass.
    expect(new PatternMatcher([`${'**/'.repeat(12)}d5`]).matches(deep)).toBe(true)
  })

  it('keeps Go regexp semantics for what patternmatcher passes through', () => {
    const m = (p: string, path: string) => new PatternMatcher([p]).matches(path)
    expect(m('a\\d', 'a1')).toBe(true)
    expect(m('a\\d', 'ad')).toBe(false)
    expect(m('x^y?', 'x^yz')).toBe(false) // `^` is the start of the path, as in Go
    expect(m('^y?', 'yz')).toBe(true)
    expect(m('a*', 'a\nb')).toBe(true) // `[^/]` crosses a newline
    expect(m('a?/**', 'ab/x\ny')).toBe(false) // a trailing `.*` does not
    expect(m('a?/**', 'ab/xy')).toBe(true)
    expect(() => new PatternMatcher(['a\\bc'])).toThrow(/invalid ignore pattern/)
  })

  it('validates and matches a 50,000-character pattern without quadratic copying', () => {
    const long = `${'a'.repeat(50_000)}*`
    const { value, ms } = timed(() => [new PatternMatcher([long]).matches(`${'a'.repeat(50_000)}b`), goMatch(long, 'a'.repeat(50_001))])
    expect(value).toEqual([true, true])
    expect(ms).toBeLessThan(1000)
  })
})

describe('Dockerfile lowering is bounded', () => {
  it(`lowers 20,000 ARG lines in about linear time, and refuses more than ${MAX_DOCKERFILE_INSTRUCTIONS} instructions`, () => {
    const args = (n: number) => `FROM scratch\n${Array.from({ length: n }, (_, i) => `ARG a${i}=\${a0}x`).join('\n')}\n`
    // Copying the ARG scope per instruction took ~25 s here for 10,000.
    const { value: df, ms } = timed(() => fromDockerfile(args(20_000)))
    expect(df.target.toStage().steps).toHaveLength(20_000)
    expect(ms).toBeLessThan(4000)
    const e = thrown(() => fromDockerfile(`FROM scratch\n${'USER 0\n'.repeat(MAX_DOCKERFILE_INSTRUCTIONS)}`))
    expect(e.code).toBe(ErrorCodes.DOCKERFILE_SYNTAX)
    expect(e.details).toMatchObject({ limit: MAX_DOCKERFILE_INSTRUCTIONS, line: MAX_DOCKERFILE_INSTRUCTIONS + 1 })
  })
})
