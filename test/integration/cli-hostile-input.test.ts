/**
 * Hostile Dockerfiles and ignore files through the real CLI: each ends with a typed error (or the
 * right result) within a time bound, in a Node heap of 256 MB, and Ctrl-C ends the process
 * promptly while it works (a blocked event loop would ignore the signal).
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stderr: string
  readonly ms: number
  /** From the SIGINT to the exit. */
  readonly afterSignalMs?: number
}

let work: string

/** The CLI in a 256 MB heap; with `sigintAfterMs`, Ctrl-C that long after the start. Killed at 60 s. */
function cli(args: string[], sigintAfterMs?: number): Promise<Run> {
  return new Promise((done, fail) => {
    const start = performance.now()
    const child = spawn(process.execPath, ['--max-old-space-size=256', bin, ...args], {
      cwd: work,
      env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache') },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    let signalledAt: number | undefined
    const interrupt = sigintAfterMs === undefined ? undefined : setTimeout(() => {
      signalledAt = performance.now()
      child.kill('SIGINT')
    }, sigintAfterMs)
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', fail)
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      if (interrupt) clearTimeout(interrupt)
      const end = performance.now()
      done({ code, signal, stderr, ms: end - start, ...(signalledAt !== undefined ? { afterSignalMs: end - signalledAt } : {}) })
    })
  })
}

function dockerfile(name: string, text: string): string {
  const p = join(work, name)
  writeFileSync(p, text)
  return p
}

function build(df: string, context: string, out: string): string[] {
  return ['build', '-f', df, '--context', context, '-o', `type=oci,dest=${join(work, out)}`, '--progress', 'plain']
}

const doubling = (): string => {
  const lines = ['FROM scratch', 'ARG a0=x']
  for (let i = 1; i <= 24; i++) lines.push(`ARG a${i}=\${a${i - 1}}\${a${i - 1}}`)
  return `${lines.join('\n')}\n`
}

let empty: string
let deepContext: string

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ism-hostile-'))
  empty = join(work, 'empty')
  mkdirSync(empty)
  deepContext = join(work, 'deep')
  const dir = join(deepContext, ...Array.from({ length: 19 }, (_, i) => `d${i}`))
  mkdirSync(dir, { recursive: true })
  for (let i = 0; i < 5; i++) writeFileSync(join(dir, `f${i}`), `${i}\n`)
  // Twelve `**/` before a name no path has: a backtracking matcher tries every split of every path.
  writeFileSync(join(deepContext, '.dockerignore'), `${'**/'.repeat(12)}y\n`)
}, 60_000)
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** Each hostile input: the CLI arguments, and what a run without Ctrl-C must end with. */
const cases: ReadonlyArray<{ name: string; args: () => string[]; check: (r: Run) => void }> = [
  {
    name: 'a 26-line Dockerfile of doubling ARGs',
    args: () => build(dockerfile('Dockerfile.double', doubling()), empty, 'double.tar'),
    check: (r) => {
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('EXPANSION_FAILED')
      expect(r.stderr).toContain('$a20')
      expect(r.stderr).toContain('line 23')
    },
  },
  {
    name: '${a//*a*a*a*a*a*b/z} on an 80-character value',
    args: () => build(dockerfile('Dockerfile.pattern', `FROM scratch\nARG a=${'a'.repeat(80)}\nARG b=\${a//*a*a*a*a*a*b/z}\nLABEL b=$b\n`), empty, 'pattern.tar'),
    check: (r) => expect(r.code).toBe(0),
  },
  {
    name: 'a .dockerignore of twelve **/ over a context 20 deep',
    args: () => build(dockerfile('Dockerfile.copy', 'FROM scratch\nCOPY . /\n'), deepContext, 'deep.tar'),
    check: (r) => expect(r.code).toBe(0),
  },
]

describe('hostile input through the CLI', () => {
  for (const c of cases) {
    it(`${c.name}: ends within 20 s in a 256 MB heap`, async () => {
      const r = await cli(c.args())
      expect(r.signal).toBeNull()
      c.check(r)
      expect(r.ms).toBeLessThan(20_000)
    })

    it(`${c.name}: Ctrl-C while it runs ends the process within 3 s`, async () => {
      const r = await cli(c.args(), 500)
      // Ended by the signal (before the CLI listens), by the CLI's abort (130), or having finished
      // its work first: with a typed error or a result, never by the 60 s kill.
      expect(r.signal === 'SIGINT' || r.code === 130 || r.code === 0 || (r.code === 1 && /\[[A-Z_]+\]/.test(r.stderr))).toBe(true)
      expect(r.afterSignalMs ?? 0).toBeLessThan(3000)
    })
  }
})
