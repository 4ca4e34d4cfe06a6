/**
 * Bad input: random mutations of real Dockerfiles (the corpus at ../shared/corpus when it is
 * there, and the fixtures in test/fixtures/dockerfile) must parse or fail with the parser's typed
 * errors, and expanding their words must succeed or fail with EXPANSION_FAILED; never anything
 * else. Long lines and deep `${…}` nesting must not crash the stack nor grow worse than linearly.
 */
import { describe, expect, it } from 'vitest'
import { parseDockerfile } from '../../src/dockerfile/parser.js'
import { dumpDockerfile } from '../../src/dockerfile/parser-dump.js'
import type { Dockerfile } from '../../src/dockerfile/ast.js'
import { processWord, processWords } from '../../src/shell/expand.js'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import { prng, seedDockerfiles } from '../helpers/dockerfile-seeds.js'

const MUTANTS = 2000
const SEED = 0x5eed_d0c


const seeds = seedDockerfiles

/** Pieces that reach the parser's and lexer's corners. */
const TOKENS = [
  '\\', '\\\n', '`', '`\n', '"', "'", '$', '${', '}', '{', ':-', ':+', ':?', '?', '#', '##', '%', '%%', '/', '//',
  '[', ']', '["', '", "', '"]', ',', '<<', '<<-', '<<EOF', '<<\'EOF\'', 'EOF\n', '\n', '\r\n', '\r', '\t', ' ', '   ',
  '--', '--from=', '--mount=type=cache,target=/x', '--link', '--chown=', '=', '# escape=`\n', '# syntax=x\n', '#',
  'ONBUILD ', 'RUN ', 'COPY ', 'ENV ', 'ARG ', 'FROM ', 'HEALTHCHECK ', 'LABEL ', 'FROB ', '\u0000', '\u00a0', '\u0085',
  '\uFEFF', 'é', '한', '😀', '\ud800', '\u2028', '\v', '\f',
]

function mutate(text: string, rnd: () => number): string {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const pos = () => Math.floor(rnd() * (text.length + 1))
  let t = text
  const rounds = 1 + Math.floor(rnd() * 4)
  for (let r = 0; r < rounds; r++) {
    const a = Math.floor(rnd() * (t.length + 1))
    const b = Math.min(t.length, a + Math.floor(rnd() * 40))
    switch (Math.floor(rnd() * 8)) {
      case 0:
        t = t.slice(0, a) + t.slice(b)
        break
      case 1:
        t = t.slice(0, a) + pick(TOKENS) + t.slice(a)
        break
      case 2:
        t = t.slice(0, a) + t.slice(a, b).repeat(2 + Math.floor(rnd() * 3)) + t.slice(a)
        break
      case 3: {
        const lines = t.split('\n')
        const i = Math.floor(rnd() * lines.length)
        const j = Math.floor(rnd() * lines.length)
        ;[lines[i], lines[j]] = [lines[j]!, lines[i]!]
        t = lines.join('\n')
        break
      }
      case 4:
        t = t.slice(0, a) + (rnd() < 0.5 ? t.slice(a, b).toUpperCase() : t.slice(a, b).toLowerCase()) + t.slice(b)
        break
      case 5:
        t = t.slice(0, pos())
        break
      case 6:
        t = t.slice(0, a) + String.fromCharCode(Math.floor(rnd() * 0x80)) + t.slice(b === a ? a : a + 1)
        break
      default:
        t = t.slice(0, a) + pick(TOKENS) + pick(TOKENS) + pick(TOKENS) + t.slice(a)
    }
  }
  return t
}

const PARSE_CODES = new Set<string>([ErrorCodes.DOCKERFILE_SYNTAX, ErrorCodes.UNKNOWN_INSTRUCTION])

/** Parses and expands; returns 'ok' / 'rejected', or throws when an error is not one of ours. */
function exercise(text: string, strict: boolean): 'ok' | 'rejected' {
  let df: Dockerfile
  try {
    df = parseDockerfile(text, { strict })
  } catch (e) {
    if (!(e instanceof ImagesmithError) || !PARSE_CODES.has(e.code)) throw e
    const { line, column, text: quoted } = e.details as { line: unknown; column: unknown; text: unknown }
    if (typeof line !== 'number' || line < 1 || typeof column !== 'number' || column < 1 || typeof quoted !== 'string') {
      throw new Error(`parse error without a location: ${JSON.stringify(e.details)}`)
    }
    return 'rejected'
  }
  dumpDockerfile(df)
  const env = new Map([
    ['HOME', '/root'],
    ['EMPTY', ''],
    ['LIST', 'a  b c'],
  ])
  const words = df.instructions.flatMap((i) => [i.rest, ...i.args, ...i.flags.map((f) => f.value ?? '')])
  for (const w of words) {
    for (const run of [() => processWord(w, env, { escapeToken: df.escapeToken }), () => processWords(w, env, { escapeToken: df.escapeToken })]) {
      try {
        run()
      } catch (e) {
        if (!(e instanceof ImagesmithError) || e.code !== ErrorCodes.EXPANSION_FAILED) throw e
      }
    }
  }
  return 'ok'
}

/** Best of five wall-clock runs, in ms (after one warm-up run): the minimum filters out GC pauses. */
function bestOf5(fn: () => void): number {
  fn()
  let best = Infinity
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    fn()
    best = Math.min(best, performance.now() - t0)
  }
  return best
}

/**
 * Growth check, not a speed check: four times the input may take at most twelve times as long
 * (linear is 4×, quadratic 16×); the absolute time is never asserted.
 */
function expectLinearish(make: (size: number) => string, work: (input: string) => void): void {
  const small = make(256 * 1024)
  const large = make(1024 * 1024)
  // A busy machine (parallel suites on two cores) can stall one measurement; quadratic growth
  // fails every attempt, noise does not.
  let ratio = Infinity
  for (let attempt = 0; attempt < 3 && ratio >= 12; attempt++) {
    const ts = bestOf5(() => work(small))
    const tl = bestOf5(() => work(large))
    ratio = Math.min(ratio, tl / Math.max(ts, 1))
  }
  expect(ratio).toBeLessThan(12)
}

describe('Dockerfile fuzz', () => {
  it(`${MUTANTS} seeded mutants parse or fail with typed errors only`, () => {
    const rnd = prng(SEED)
    const base = seeds()
    const outcome = { ok: 0, rejected: 0 }
    for (let i = 0; i < MUTANTS; i++) {
      const seed = base[Math.floor(rnd() * base.length)]!
      const mutant = mutate(seed.text, rnd)
      try {
        outcome[exercise(mutant, i % 2 === 0)]++
      } catch (e) {
        throw new Error(`mutant ${i} of ${seed.name} threw ${e instanceof Error ? e.stack : String(e)}\n--- input ---\n${mutant}`)
      }
    }
    // Both paths must have been exercised for the run to mean anything.
    expect(outcome.ok).toBeGreaterThan(MUTANTS / 10)
    expect(outcome.rejected).toBeGreaterThan(MUTANTS / 20)
  })

  it('rejects a 1 MB physical line as BuildKit does (its scanner stops at 64 KiB), quickly', () => {
    const e = (() => {
      try {
        parseDockerfile(`FROM a\nRUN echo ${'x'.repeat(1024 * 1024)}\n`)
      } catch (err) {
        return err as ImagesmithError
      }
    })()
    expect(e?.code).toBe(ErrorCodes.DOCKERFILE_SYNTAX)
    expect(e?.details.line).toBe(2)
  })

  it('parses a 1 MB logical line (continued) in linear-ish time', () => {
    const continued = (size: number) => `FROM a\nRUN ${`echo ${'y'.repeat(1000)} && \\\n`.repeat(Math.ceil(size / 1010))}true\n`
    const df = parseDockerfile(continued(1024 * 1024))
    expect(df.instructions[1]!.args[0]!.length).toBeGreaterThan(1_000_000)
    expectLinearish(continued, (t) => parseDockerfile(t))
    const env = (size: number) => `FROM a\nENV ${'K="v w" \\\n'.repeat(Math.ceil(size / 9))}Z=1\n`
    expectLinearish(env, (t) => parseDockerfile(t))
    const heredocWords = (size: number) => `FROM a\nRUN cat <<EOF ${'"$x" \\\n'.repeat(Math.ceil(size / 7))}end\nbody\nEOF\n`
    expectLinearish(heredocWords, (t) => parseDockerfile(t))
  })

  it('parses a 1 MB chain of ONBUILDs and blank-heavy lines without recursion or backtracking blow-up', () => {
    const chain = `FROM a\n${'ONBUILD \\\n'.repeat(125_000)}RUN x\n`
    const df = parseDockerfile(chain)
    let depth = 0
    for (let i = df.instructions[1]; i?.onbuild; i = i.onbuild) depth++
    expect(depth).toBe(125_000)
    expect(dumpDockerfile(df).endsWith('(run "x")' + ')'.repeat(125_000))).toBe(true)
    // Long blank runs where a backtracking regex would go quadratic.
    const blanks = `# syntax=${' '.repeat(60_000)}x\nFROM a\nRUN <<${' '.repeat(60_000)}<x\n`
    expect(parseDockerfile(blanks, { strict: false }).directives[0]!.value).toBe('x')
  })

  it('expands and lexes 10k nested ${…} in linear-ish time', () => {
    const nested = (depth: number) => `${'${A:-'.repeat(depth)}v${'}'.repeat(depth)}`
    expect(processWord(nested(10_000), {}).value).toBe('v')
    expect(processWords(nested(10_000), {}).words).toEqual(['v'])
    // Inside a Dockerfile, heredoc detection lexes the whole RUN line.
    const df = parseDockerfile(`FROM a\nRUN cat <<EOF ${nested(10_000)}\nbody\nEOF\n`)
    expect(df.instructions[1]!.heredocs).toHaveLength(1)
    expectLinearish(
      (size) => nested(Math.floor(size / 7)),
      (w) => processWord(w, {}),
    )
  })
})
