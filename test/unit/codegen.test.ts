import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateModule } from '../../src/codegen/index.js'
import { image, type ImageBuilder } from '../../src/index.js'

const root = resolve(__dirname, '../..')
const dir = mkdtempSync(join(root, 'test', '.codegen-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Writes the generated module and imports it (against this checkout's sources). */
async function roundTrip(builder: ImageBuilder, name: string): Promise<{ text: string; mod: { default: ImageBuilder; stages: (a?: Record<string, string>) => Record<string, ImageBuilder>; target: (a?: Record<string, string>) => ImageBuilder } }> {
  const text = generateModule({ target: builder.toStage(), importFrom: join(root, 'src', 'index.js') })
  const file = join(dir, `${name}.ts`)
  writeFileSync(file, text)
  return { text, mod: await import(file) }
}

describe('generateModule: IR → TypeScript that makes the same steps', () => {
  it('every instruction kind, options and word markers: the module’s default export has the same vertex keys', async () => {
    const base = image().from('busybox:1.36')
    const tools = base.run('mkdir /out', { mounts: [{ type: 'cache', target: '/c', id: 'x', sharing: 'locked', mode: 0o755 }, { type: 'secret', id: 's', env: 'TOKEN' }, { type: 'tmpfs', target: '/t', size: 10 }] })
    const app = image().from(base).arg('VERSION', '1.2 beta').arg('REF', '$VERSION-x', { expand: true }).arg('NODEF')
      .env({ GREETING: 'hello "world"', 'odd.key': "it's\n" }).env('P', '${BASE:-/opt}', { expand: true })
      .workdir('$HOME/x', { expand: true }).user('1000:1000').expose([80, '53/udp']).volume(['/a', '/b']).label('k', 'v')
      .copy(['a b.txt', 'plain.txt'], './', { chown: '1000', chmod: '640', exclude: ['*.md'], link: true })
      .copy('/out', '/o', { from: tools }).copy(['a/./b/c', 'd'], '/p/', { parents: true })
      .copy([], '/etc/x.conf', { inline: [{ name: 'EOF', content: 'k=$V\n', expand: true }], expand: true }).add('https://example.com/x', '/x', { checksum: `sha256:${'a'.repeat(64)}` }).add('a.tar', '/a', { unpack: false })
      .run(['/bin/sh', '-c', 'echo']).run('cat /m/x', { network: 'none', mounts: [{ type: 'bind', target: '/m', from: tools, source: 'out', readwrite: true }] })
      .shell(['/bin/ash', '-c']).healthcheck({ test: ['curl', 'x'], interval: '1m30s', timeout: 3, startPeriod: '500ms', retries: 2 })
      .stopSignal('SIGINT').onBuild('RUN make').maintainer('me').entrypoint('run.sh').cmd(['a', 'b'])
    const { text, mod } = await roundTrip(app, 'kinds')
    expect(mod.default.graph().outputs[0]!.vertex).toBe(app.graph().outputs[0]!.vertex)
    expect(mod.default.graph().vertices.map((v) => v.id)).toEqual(app.graph().vertices.map((v) => v.id))
    expect(text).toMatch(/export interface BuildArgs \{\n {2}VERSION\?: string\n {2}REF\?: string\n {2}NODEF\?: string\n\}/)
    expect(text).toContain("export default target(cliBuildArgs())")
  })

  it('build args are a typed parameter: a value given replaces the default as a literal, as --build-arg does', async () => {
    const app = image().from('busybox').arg('V', '$X', { expand: true }).run('echo $V')
    const { mod } = await roundTrip(app, 'args')
    expect(mod.stages({ V: 'given' }).app!.graph().outputs[0]!.vertex).toBe(image().from('busybox').arg('V', 'given').run('echo $V').graph().outputs[0]!.vertex)
    expect(mod.target({ V: 'given' }).graph().outputs[0]!.vertex).toBe(mod.stages({ V: 'given' }).app!.graph().outputs[0]!.vertex)
    expect(mod.stages().app!.graph().outputs[0]!.vertex).toBe(app.graph().outputs[0]!.vertex)
  })
})

describe('ts-morph stays out of the library and the CLI', () => {
  const probe = (entry: string) => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', join(root, 'test/helpers/loaded-modules.mjs'), join(root, entry)], { encoding: 'utf8' })) as { ms: number; tsMorph: number }
  it('importing src/index.ts or the CLI does not load ts-morph; the codegen entry does', () => {
    expect(probe('src/index.ts').tsMorph).toBe(0)
    expect(probe('src/cli/main.ts').tsMorph).toBe(0)
    expect(probe('src/codegen/index.ts').tsMorph).toBeGreaterThan(0)
  }, 60_000)
})
