/**
 * `npm run conformance`: the Dockerfile parser and the shell-word expander against the corpus in
 * ../shared/corpus (BuildKit's own parser and lexer test data, and real-world Dockerfiles; the
 * formats are described in its README.md). Prints `N passed, N failed` per suite and exits 1 when
 * anything failed. The corpus is read where it is, never copied into the repository.
 *
 *   npx tsx scripts/conformance.ts [--corpus DIR] [--verbose]
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseDockerfile } from '../src/dockerfile/parser.js'
import { dumpDockerfile } from '../src/dockerfile/parser-dump.js'
import { processWord, processWords } from '../src/shell/expand.js'
import { isImagesmithError } from '../src/errors.js'

export interface CaseFailure {
  readonly name: string
  readonly detail: string
}

export interface SuiteResult {
  readonly suite: string
  readonly passed: number
  readonly failed: number
  readonly failures: readonly CaseFailure[]
}

/**
 * The corpus folder: `--corpus`, else `../shared/corpus` beside the repository root, else beside
 * the main checkout when this is a git worktree (whose `.git` file points into it).
 */
export function findCorpus(explicit?: string): string | undefined {
  if (explicit) return existsSync(explicit) ? resolve(explicit) : undefined
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
  const candidates = [resolve(root, '../shared/corpus')]
  const dotGit = join(root, '.git')
  if (existsSync(dotGit) && statSync(dotGit).isFile()) {
    const m = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'))
    // <main>/.git/worktrees/<name> → <main>
    if (m) candidates.push(resolve(m[1]!.trim(), '../../..', '../shared/corpus'))
  }
  return candidates.find((c) => existsSync(c))
}

function suite(name: string, cases: Iterable<[string, () => string | undefined]>): SuiteResult {
  let passed = 0
  const failures: CaseFailure[] = []
  for (const [caseName, run] of cases) {
    let problem: string | undefined
    try {
      problem = run()
    } catch (e) {
      problem = `threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`
    }
    if (problem === undefined) passed++
    else failures.push({ name: caseName, detail: problem })
  }
  return { suite: name, passed, failed: failures.length, failures }
}

function dirs(path: string): string[] {
  return readdirSync(path, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
}

function parserCases(corpus: string): SuiteResult {
  const base = join(corpus, 'buildkit-parser/testfiles')
  return suite(
    'buildkit-parser testfiles',
    dirs(base).map((name) => [
      name,
      () => {
        const df = parseDockerfile(readFileSync(join(base, name, 'Dockerfile')), { strict: false })
        const expected = readFileSync(join(base, name, 'result'), 'utf8').replace(/\r\n/g, '\n')
        const got = `${dumpDockerfile(df)}\n`
        return got === expected ? undefined : firstDifference(got, expected)
      },
    ]),
  )
}

function negativeCases(corpus: string): SuiteResult {
  const base = join(corpus, 'buildkit-parser/testfiles-negative')
  return suite(
    'buildkit-parser testfiles-negative',
    dirs(base).map((name) => [
      name,
      () => {
        const text = readFileSync(join(base, name, 'Dockerfile'))
        for (const strict of [false, true]) {
          try {
            parseDockerfile(text, { strict })
            return `accepted (strict: ${strict})`
          } catch (e) {
            if (!isImagesmithError(e)) return `threw an untyped error: ${String(e)}`
          }
        }
        return undefined
      },
    ]),
  )
}

function lineCases(corpus: string): SuiteResult {
  const df = () => parseDockerfile(readFileSync(join(corpus, 'buildkit-parser/testfile-line/Dockerfile')), { strict: false })
  const spans: [string, number, number][] = [
    ['FROM', 5, 5],
    ['ENV', 11, 12],
    ['RUN', 17, 31],
  ]
  return suite('buildkit-parser testfile-line', [
    [
      'instruction count',
      () => {
        const n = df().instructions.length
        return n === 3 ? undefined : `${n} instructions, expected 3`
      },
    ],
    [
      'whole AST 5-31',
      () => {
        const ins = df().instructions
        const span = `${ins[0]!.range.start.line}-${ins[ins.length - 1]!.range.end.line}`
        return span === '5-31' ? undefined : `spans ${span}`
      },
    ],
    ...spans.map(([kw, start, end], i): [string, () => string | undefined] => [
      `${kw} ${start}-${end}`,
      () => {
        const ins = df().instructions[i]!
        const got = `${ins.keyword} ${ins.range.start.line}-${ins.range.end.line}`
        return got === `${kw} ${start}-${end}` ? undefined : `got ${got}`
      },
    ]),
  ])
}

function envVarCases(corpus: string): SuiteResult {
  const env = new Map([
    ['PWD', '/home'],
    ['SHELL', 'bash'],
    ['KOREAN', '한국어'],
    ['NULL', ''],
  ])
  const cases: [string, () => string | undefined][] = []
  const lines = readFileSync(join(corpus, 'buildkit-shell/envVarTest'), 'utf8').split('\n')
  lines.forEach((line0, i) => {
    if (line0.startsWith('#')) return
    const line = line0.trim()
    if (line === '') return
    const fields = line.split('|')
    if (fields.length !== 3) {
      cases.push([`line ${i + 1}`, () => `malformed test line: ${line}`])
      return
    }
    const [platform, input, expected] = fields.map((f) => f.trim()) as [string, string, string]
    if (platform === 'W') return
    cases.push([
      `line ${i + 1}: ${input}`,
      () => {
        let got: string
        try {
          got = processWord(input, env).value
        } catch (e) {
          if (!isImagesmithError(e)) throw e
          got = 'error'
        }
        return got === expected ? undefined : `got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`
      },
    ])
  })
  return suite('buildkit-shell envVarTest', cases)
}

function wordsCases(corpus: string): SuiteResult {
  const env = new Map<string, string>()
  const cases: [string, () => string | undefined][] = []
  const lines = readFileSync(join(corpus, 'buildkit-shell/wordsTest'), 'utf8').split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  lines.forEach((line, i) => {
    if (line.startsWith('#')) return
    if (line.startsWith('ENV ')) {
      const entry = line.slice(4).replace(/^ +/, '')
      const eq = entry.indexOf('=')
      // Later lines see the environment as it is now.
      env.set(entry.slice(0, eq), entry.slice(eq + 1))
      return
    }
    const bar = line.indexOf('|')
    if (bar < 0 || line.indexOf('|', bar + 1) >= 0) {
      cases.push([`line ${i + 1}`, () => `malformed test line: ${line}`])
      return
    }
    const input = line.slice(0, bar).trim()
    const expected = line.slice(bar + 1).replace(/^ +/, '').split(',')
    const snapshot = new Map(env)
    cases.push([
      `line ${i + 1}: ${input}`,
      () => {
        let got: readonly string[]
        try {
          got = processWords(input, snapshot).words
        } catch (e) {
          if (!isImagesmithError(e)) throw e
          got = ['error']
        }
        return JSON.stringify(got) === JSON.stringify(expected) ? undefined : `got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`
      },
    ])
  })
  return suite('buildkit-shell wordsTest', cases)
}

function realWorldCases(corpus: string): SuiteResult {
  const base = join(corpus, 'real-world')
  const files = readdirSync(base)
    .filter((f) => f.endsWith('.Dockerfile'))
    .sort()
  return suite(
    'real-world',
    files.map((f) => [
      f,
      () => {
        const df = parseDockerfile(readFileSync(join(base, f)), { filename: f })
        return df.instructions.length > 0 ? undefined : 'no instructions'
      },
    ]),
  )
}

/** Every suite over the corpus at `corpus`. */
export function runConformance(corpus: string): SuiteResult[] {
  return [parserCases(corpus), negativeCases(corpus), lineCases(corpus), envVarCases(corpus), wordsCases(corpus), realWorldCases(corpus)]
}

function firstDifference(got: string, expected: string): string {
  const g = got.split('\n')
  const e = expected.split('\n')
  for (let i = 0; i < Math.max(g.length, e.length); i++) {
    if (g[i] !== e[i]) return `line ${i + 1}: got ${JSON.stringify(g[i])}, expected ${JSON.stringify(e[i])}`
  }
  return 'differs'
}

function main(argv: readonly string[]): number {
  const at = argv.indexOf('--corpus')
  const verbose = argv.includes('--verbose')
  const corpus = findCorpus(at >= 0 ? argv[at + 1] : undefined)
  if (!corpus) {
    const where = at >= 0 ? argv[at + 1] : '../shared/corpus (relative to the repository root)'
    console.log(`conformance: SKIPPED — no corpus at ${where}; pass --corpus DIR`)
    return 0
  }
  console.log(`conformance corpus: ${corpus}`)
  let failed = 0
  for (const r of runConformance(corpus)) {
    console.log(`${r.suite}: ${r.passed} passed, ${r.failed} failed`)
    for (const f of verbose ? r.failures : r.failures.slice(0, 10)) console.log(`  FAIL ${f.name}: ${f.detail}`)
    failed += r.failed
  }
  return failed === 0 ? 0 : 1
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2))
}
