import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/main.js'

const root = resolve(__dirname, '../..')
const dir = mkdtempSync(join(root, 'test', '.codegen-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s) })
  return { code, out, err }
}

describe('imagesmith dockerfile / convert', () => {
  const script = join(dir, 'build.ts')
  writeFileSync(script, `import { image } from ${JSON.stringify(join(root, 'src', 'index.js'))}\nexport default image().from('oci-archive:/srv/base.tar').workdir('/app').cmd(['run'])\n`)

  it('prints the builder; a local base under a comment, or NOT_REPRESENTABLE with --local-refs error', async () => {
    const r = await run(['dockerfile', script])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toBe('# oci-archive:/srv/base.tar is a local image (buildah, podman and imagesmith read it; for docker build, load it and use its name)\nFROM oci-archive:/srv/base.tar\nWORKDIR /app\nCMD ["run"]\n')
    const strict = await run(['dockerfile', script, '--local-refs', 'error'])
    expect(strict.code).toBe(1)
    expect(strict.err).toContain('error [NOT_REPRESENTABLE]')
    expect((await run(['dockerfile', script, '--local-refs', 'maybe'])).code).toBe(2)
    expect((await run(['dockerfile'])).code).toBe(2)
  })

  it('convert writes the module to stdout or -o; both commands are in the help', async () => {
    const df = join(dir, 'Dockerfile')
    writeFileSync(df, 'ARG V=1\n# the base\nFROM busybox:${V}\nRUN echo hi\n')
    const r = await run(['convert', df])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain("export interface BuildArgs {\n  V?: string\n}")
    expect(r.out).toContain("  // the base\n  const app = image().from(`busybox:${args.V ?? '1'}`)\n    .run('echo hi')")
    const out = join(dir, 'out.ts')
    expect((await run(['convert', df, '-o', out])).code).toBe(0)
    const help = await run(['--help'])
    expect(help.out).toContain('imagesmith dockerfile <build.ts>')
    expect(help.out).toContain('imagesmith convert <Dockerfile>')
  })
})
