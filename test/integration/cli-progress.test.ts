/** The CLI's progress modes, --metadata-file and --no-cache-filter, as users run them: real processes and files. */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const api = join(root, 'src', 'index.ts')

let work: string
let ctx: string
let buildScript: string
const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), CI: '1' }, timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ism-cli-progress-'))
  ctx = join(work, 'ctx')
  mkdirSync(join(ctx, 'web'), { recursive: true })
  writeFileSync(join(ctx, 'base.txt'), 'base\n')
  writeFileSync(join(ctx, 'web', 'index.html'), '<p>1</p>\n')
  writeFileSync(join(ctx, 'web', 'app.js'), 'console.log(1)\n')
  buildScript = join(work, 'build.ts')
  // A record of builders: its keys name the stages (--target, --no-cache-filter).
  writeFileSync(buildScript, [
    `import { image } from ${JSON.stringify(api)}`,
    `const base = image().from('scratch').copy('base.txt', '/base.txt')`,
    `const app = image().from(base).copy('web', '/web').env('MODE', 'prod')`,
    'export default { base, app }',
    '',
  ].join('\n'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

const build = (...extra: string[]) => cli(['build', buildScript, '--target', 'app', '--context', ctx, ...extra])

describe('imagesmith build progress and metadata', () => {
  it('--progress plain prints the reason next to each rebuilt step; --metadata-file has buildx keys and every step', () => {
    const first = build('--progress', 'plain', '-t', 'meta:1', '-t', 'meta:latest')
    expect(first.code, first.stderr).toBe(0)
    expect(first.stderr).toMatch(/DONE \d+\.\d\ds \(rebuilt: first build of this step\)/)

    writeFileSync(join(ctx, 'web', 'app.js'), 'console.log(2)\n')
    const metaPath = join(work, 'out', 'meta.json')
    const tarball = join(work, 'out', 'app.tar')
    const r = build('--progress', 'plain', '-t', 'meta:1', '-t', 'meta:latest', '--metadata-file', metaPath, '-o', `type=oci,dest=${tarball}`)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`output: ${tarball}`)
    const lines = r.stderr.split('\n')
    const num = (text: string) => lines.find((l) => l.includes(text))!.match(/^#(\d+) /)![1]
    const web = num('COPY web /web')
    const base = num('COPY base.txt /base.txt')
    expect(lines).toContain(`#${base} CACHED`)
    expect(lines.find((l) => l.startsWith(`#${web} DONE`))).toMatch(/\(rebuilt: 1 context file changed: web\/app\.js\)$/)
    expect(r.stderr).toMatch(/steps: 1 built, 1 cached/)

    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>
    expect(meta['containerimage.digest']).toBe(r.stdout.trim())
    expect(meta['image.name']).toBe('meta:1,meta:latest')
    expect(meta['containerimage.config.digest']).toMatch(/^sha256:[a-f0-9]{64}$/)
    const vertices = meta['imagesmith.vertices'] as { description: string; status: string; cached: boolean; key?: string; ms: number; reason?: string; stage?: string }[]
    const webV = vertices.find((v) => v.description === 'COPY web /web')!
    expect(webV).toMatchObject({ status: 'built', cached: false, reason: '1 context file changed: web/app.js', stage: 'app' })
    expect(webV.key).toMatch(/^sha256:/)
    expect(typeof webV.ms).toBe('number')
    expect(vertices.find((v) => v.description === 'COPY base.txt /base.txt')).toMatchObject({ status: 'cached', cached: true, stage: 'base' })
    expect(meta['imagesmith.bases']).toEqual([])
  })

  it('--no-cache-filter rebuilds only the named stage of a build script', () => {
    const r = build('--progress', 'plain', '--no-cache-filter', 'base')
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stderr.split('\n')
    const base = lines.find((l) => l.includes('COPY base.txt'))!.match(/^#(\d+) /)![1]
    const web = lines.find((l) => l.includes('COPY web'))!.match(/^#(\d+) /)![1]
    expect(lines.find((l) => l.startsWith(`#${base} DONE`))).toMatch(/\(rebuilt: no-cache-filter: stage base\)$/)
    expect(lines).toContain(`#${web} CACHED`)
    const bad = build('--progress', 'plain', '--no-cache-filter', 'nope')
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toContain('no stage named nope')
  })

  it('--progress rawjson prints one JSON event per line; quiet prints nothing but the digest', () => {
    writeFileSync(join(ctx, 'web', 'index.html'), '<p>2</p>\n')
    const r = build('--progress', 'rawjson')
    expect(r.code, r.stderr).toBe(0)
    const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; vertex: string; reason?: string; ms?: number })
    expect(events.map((e) => e.type)).toContain('start')
    const done = events.filter((e) => e.type === 'done')
    expect(done.length).toBeGreaterThan(2)
    expect(done.some((e) => e.reason === '1 context file changed: web/index.html')).toBe(true)
    for (const e of events) expect(e.vertex).toMatch(/^sha256:/)

    const q = build('--progress', 'quiet')
    expect(q.code).toBe(0)
    expect(q.stderr).toBe('')
    expect(q.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/)
  })
})
