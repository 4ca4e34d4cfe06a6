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
