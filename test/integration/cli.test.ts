/** The CLI as users run it: real processes, real files, exit codes 0/1/2, no partial output. */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const api = join(root, 'src', 'index.ts')

let work: string
const cli = (args: string[], cwd = work) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache') }, timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}
const script = (name: string, body: string) => {
  const p = join(work, name)
  writeFileSync(p, `import { image } from ${JSON.stringify(api)}\n${body}\n`)
  return p
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ism-cli-'))
  mkdirSync(join(work, 'ctx'))
  writeFileSync(join(work, 'ctx', 'hello.txt'), 'hi\n')
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('imagesmith CLI', () => {
  it('builds a .ts script into an OCI archive and prints the digest', () => {
    const s = script('build.ts', `const msg: string = 'typed'\nexport default image().from('scratch').copy('hello.txt', '/hello.txt').env('MSG', msg).cmd(['/hello'])`)
    const out = join(work, 'out', 'img.tar')
    const r = cli(['build', s, '--context', join(work, 'ctx'), '-t', 'cli-test:1', '-o', `type=oci,dest=${out}`, '--progress', 'plain'])
    expect(r.stderr).toContain('COPY hello.txt /hello.txt')
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/)
    expect(existsSync(out)).toBe(true)
    const i = cli(['inspect', out])
    expect(i.code).toBe(0)
    expect(i.stdout).toContain('docker.io/library/cli-test:1')
    expect(i.stdout).toContain('MSG=typed')
    expect(i.stdout).toContain('COPY hello.txt /hello.txt # buildkit')
    const j = JSON.parse(cli(['inspect', out, '--json']).stdout)
    expect(j[0].manifestDigest).toBe(r.stdout.trim())
  })

  it('picks a target from a record of builders and writes an OCI layout', () => {
    const s = script('multi.ts', `export default { a: image().env('A', '1'), b: image().env('B', '2') }`)
    const none = cli(['build', s])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('--target')
    const dir = join(work, 'layout')
    const r = cli(['build', s, '--target', 'b', '-o', `type=oci-layout,dest=${dir}`, '--progress', 'quiet'])
    expect(r.code).toBe(0)
    expect(readdirSync(dir).sort()).toEqual(['blobs', 'index.json', 'oci-layout'])
    expect(cli(['build', s, '--target', 'zzz']).code).toBe(2)
  })

  it('prints the graph as Mermaid and DOT', () => {
    const s = script('graph.ts', `const b = image().from('scratch').copy('x', '/x')\nexport default image().from('scratch').copy('/x', '/y', { from: b })`)
    const m = cli(['graph', s])
    expect(m.code).toBe(0)
    expect(m.stdout).toMatch(/^flowchart TD/)
    const d = cli(['graph', s, '--format', 'dot'])
    expect(d.stdout).toContain('digraph imagesmith')
  })

  it('exits 2 on usage errors', () => {
    expect(cli([]).code).toBe(2)
    expect(cli(['frobnicate']).code).toBe(2)
    expect(cli(['build']).code).toBe(2)
    const s = script('ok.ts', `export default image()`)
    expect(cli(['build', s, '--bogus']).code).toBe(2)
    expect(cli(['build', s, '-o', 'type=tarball,dest=x']).code).toBe(2)
    expect(cli(['build', s, '-t', 'Bad:Tag:x']).code).toBe(2)
  })

  it('a usage error prints the error and one line pointing to --help, not the whole help', () => {
    const s = script('usage.ts', `export default image()`)
    const cases: [string[], string][] = [
      [['build', s, '--bogus=1'], "error: unknown flag --bogus\nSee 'imagesmith build --help'.\n"],
      [['graph', s, '--format'], "error: --format needs a value\nSee 'imagesmith graph --help'.\n"],
      [['cache', 'frob'], "error: cache needs a subcommand: ls, du or prune\nSee 'imagesmith cache --help'.\n"],
      [['frobnicate'], 'error: unknown command "frobnicate"\nSee \'imagesmith --help\'.\n'],
    ]
    for (const [argv, stderr] of cases) {
      const r = cli(argv)
      expect(r.code, argv.join(' ')).toBe(2)
      expect(r.stderr).toBe(stderr)
      expect(r.stdout).toBe('')
    }
    // What the pointer names prints the help.
    const help = cli(['build', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('imagesmith build -f Dockerfile')
  })

  it('graph takes a Dockerfile as build does: -f FILE or -f -, a context, --target, --build-arg, --platform', () => {
    const dir = join(work, 'df-graph')
    mkdirSync(dir, { recursive: true })
    const text = 'ARG BASE=scratch\nFROM ${BASE} AS base\nCOPY hello.txt /hello.txt\nFROM scratch\nARG TARGETARCH\nCOPY --from=base /hello.txt /copied-${TARGETARCH}.txt\n'
    const df = join(dir, 'Dockerfile.graph')
    writeFileSync(df, text)
    const ctx = join(work, 'ctx')
    const r = cli(['graph', '-f', df, ctx, '--platform', 'linux/arm64'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^flowchart TD/)
    expect(r.stdout).toContain('COPY hello.txt /hello.txt')
    expect(r.stdout).toContain('ARG TARGETARCH=arm64')
    // The long flag, the Dockerfile on standard input, and the same graph.
    const stdin = spawnSync(process.execPath, [bin, 'graph', '--file', '-', ctx, '--platform', 'linux/arm64'], { cwd: work, input: text, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache') } })
    expect(stdin.status, stdin.stderr).toBe(0)
    expect(stdin.stdout).toBe(r.stdout)
    const base = cli(['graph', '-f', df, ctx, '--target', 'base', '--format', 'dot'])
    expect(base.code, base.stderr).toBe(0)
    expect(base.stdout).toContain('digraph imagesmith')
    expect(base.stdout).not.toContain('/copied-')
    expect(base.stdout).not.toContain('TARGETARCH')
    // A build arg the Dockerfile declares changes its base.
    const arg = cli(['graph', '-f', df, ctx, '--build-arg', 'BASE=busybox:1.36'])
    expect(arg.code, arg.stderr).toBe(0)
    expect(arg.stdout).toContain('busybox:1.36')
    expect(cli(['graph', '-f', join(dir, 'missing'), ctx]).code).toBe(1)
  })

  it('exits 1 with a typed error and leaves no output for failed builds', () => {
    const out = join(work, 'fail', 'x.tar')
    const cases: [string, string, string][] = [
      ['missing.ts', `export default image().from('scratch').copy('nope.txt', '/')`, 'COPY_SOURCE_NOT_FOUND'],
      ['outside.ts', `export default image().from('scratch').copy('../secret', '/')`, 'COPY_OUTSIDE_CONTEXT'],
      ['unknown.ts', `export default image().from('127.0.0.1:9/no-such-image:1')`, 'REGISTRY_UNREACHABLE'],
      ['port.ts', `export default image().expose('http')`, 'INVALID_PORT'],
      ['signal.ts', `export default image().stopSignal('SIGNOPE')`, 'INVALID_SIGNAL'],
      ['syntax.ts', `export default image(.from(`, 'BUILD_SCRIPT_INVALID'],
      ['noexport.ts', `export const x = 1`, 'BUILD_SCRIPT_INVALID'],
    ]
    for (const [name, body, code] of cases) {
      const r = cli(['build', script(name, body), '--context', join(work, 'ctx'), '-o', `type=oci,dest=${out}`])
      expect(r.code, `${name}: ${r.stderr}`).toBe(1)
      expect(r.stderr).toContain(code)
      expect(existsSync(out)).toBe(false)
    }
    expect(existsSync(join(work, 'fail')) ? readdirSync(join(work, 'fail')) : []).toEqual([])
  })
})
