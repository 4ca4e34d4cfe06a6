/**
 * Errors that say what to do: a path given as a FROM reference names the transport that reads it,
 * a missing secret file names the file, and a build script's mistake names the script's line.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { busyboxArchive, busyboxLayout } from '../helpers/testbed.js'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const api = join(root, 'src', 'index.ts')

let work: string
let cache: string
const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: cache }, timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ism-errors-'))
  cache = join(work, 'cache')
  mkdirSync(join(work, 'ctx'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('a path as a FROM reference', () => {
  it('an OCI archive, a layout directory, a docker archive and a missing path each name the transport that fits', async () => {
    const build = (ref: string) => image().from(ref).env('A', '1').build({ cacheDir: cache, context: join(work, 'ctx') })
    await expect(build(busyboxArchive())).rejects.toMatchObject({
      code: 'INVALID_REFERENCE',
      message: expect.stringContaining(`oci-archive:${busyboxArchive()}`),
      details: expect.objectContaining({ suggestion: `oci-archive:${busyboxArchive()}` }),
    })
    const layout = await build(busyboxLayout()).catch((e: Error) => e)
    expect(layout).toMatchObject({ code: 'INVALID_REFERENCE', details: expect.objectContaining({ suggestion: `oci:${busyboxLayout()}` }) })
    expect((layout as Error).message).not.toContain('docker.io/')
    // A docker archive: a tar with manifest.json and no index.json.
    const dockerTar = join(work, 'docker.tar')
    writeFileSync(join(work, 'manifest.json'), '[]')
    spawnSync('tar', ['-cf', dockerTar, '-C', work, 'manifest.json'])
    await expect(build(dockerTar)).rejects.toMatchObject({ details: expect.objectContaining({ suggestion: `docker-archive:${dockerTar}` }) })
    // A relative path that is there, with no ./ in front: still a path.
    copyFileSync(busyboxArchive(), join(work, 'ctx', 'base.tar'))
    const cwd = process.cwd()
    process.chdir(join(work, 'ctx'))
    try {
      await expect(build('base.tar')).rejects.toMatchObject({ details: expect.objectContaining({ suggestion: 'oci-archive:base.tar' }) })
      // A directory that holds no image does not shadow the image name it shares.
      mkdirSync('nosuchimage')
      await expect(build('nosuchimage')).rejects.not.toMatchObject({ code: 'INVALID_REFERENCE' })
    } finally {
      process.chdir(cwd)
    }
    const missing = await build('/srv/bases/busybox.tar').catch((e: Error) => e)
    expect(missing).toMatchObject({ code: 'INVALID_REFERENCE', details: expect.objectContaining({ path: '/srv/bases/busybox.tar' }) })
    expect((missing as Error).message).toContain('oci-archive:/srv/bases/busybox.tar')
    expect((missing as Error).message).toContain('does not exist')
  })
})

describe('a secret file that is missing', () => {
  it('the CLI and the API name the file, before any step runs', async () => {
    const missing = join(work, 'no-such-token')
    const s = join(work, 'secret.ts')
    writeFileSync(s, `import { image } from ${JSON.stringify(api)}\nexport default image().from('scratch').run('cat /run/secrets/tok', { mounts: [{ type: 'secret', id: 'tok', required: true }] })\n`)
    const r = cli(['build', s, '--context', join(work, 'ctx'), '--secret', `id=tok,src=${missing}`, '--progress', 'plain'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`error [SECRET_NOT_FOUND]: secret "tok": file ${missing} does not exist`)
    expect(r.stderr).not.toContain('was not provided')

    const b = image().from('scratch').run('true', { mounts: [{ type: 'secret', id: 'tok' }] })
    const opts = { cacheDir: cache, context: join(work, 'ctx') }
    await expect(b.build({ ...opts, secrets: { tok: { src: missing } } })).rejects.toMatchObject({ code: 'SECRET_NOT_FOUND', details: expect.objectContaining({ id: 'tok', path: missing }) })
    // A path given where a source object belongs says how to write it.
    await expect(b.build({ ...opts, secrets: { tok: missing as never } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`{ src: ${JSON.stringify(missing)} }`) })
  })
})

describe('a build script mistake', () => {
  // Type-only lines above the call: the compiled module's line numbers differ from the script's.
  const prelude = 'interface A {\n  a: string\n}\ntype B = A\n\n'
  const scriptAt = (name: string, body: string) => {
    const p = join(work, name)
    writeFileSync(p, `import { image } from ${JSON.stringify(api)}\n${prelude}${body}\n`)
    return p
  }

  it('names the script line in the message and details.location, through the CLI', () => {
    // line 9: `chmod: true` would have been `chmod2.trim is not a function` from inside the library
    const s = scriptAt('bad-chmod.ts', "const opts = { chmod: true } as unknown as { chmod: string }\nexport default image().from('scratch')\n  .copy('a', '/a', opts)")
    const r = cli(['build', s, '--context', join(work, 'ctx'), '--progress', 'quiet'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`error [INVALID_ARGUMENT]: copy() option chmod must be a string or a number, got boolean true (at ${s}:9)`)
    expect(r.stderr).not.toMatch(/is not a function|TypeError/)
    const d = scriptAt('empty-dest.ts', "export default image()\n  .from('scratch')\n  .copy('a', '')")
    const r2 = cli(['build', d, '--context', join(work, 'ctx'), '--progress', 'quiet'])
    expect(r2.stderr).toContain(`copy() destination must be a non-empty string (at ${d}:9)`)
  })

  it('through the API: every option field is checked, and a TypeError from inside never is the message', () => {
    const here = (e: unknown) => (e as { details: { location: string } }).details.location
    const thrown = (fn: () => unknown) => {
      try {
        fn()
      } catch (e) {
        return e as Error & { code: string; details: Record<string, unknown> }
      }
      throw new Error('did not throw')
    }
    const line = (): number => Number(new Error().stack!.split('\n')[2]!.match(/:(\d+):\d+\)?$/)![1])
    const cases: [string, () => unknown, RegExp][] = [
      ['copy exclude', () => image().copy('a', '/a', { exclude: 'x' as never }), /copy\(\) option exclude must be an array of strings, got string "x"/],
      ['add unpack', () => image().add('a', '/a', { unpack: 'no' as never }), /add\(\) option unpack must be a boolean/],
      ['run mount mode', () => image().run('true', { mounts: [{ type: 'cache', target: '/c', mode: '755' as never }] }), /run\(\) mount option mode must be a number, got string "755"/],
      ['run cmd', () => image().run(5 as never), /run\(\) needs a string .* got number 5/],
      ['env record', () => image().env(7 as never), /env\(\) needs a name and a value/],
      ['healthcheck test', () => image().healthcheck({ test: 3 as never }), /healthcheck\(\) test must be a string or an array of strings/],
      ['user', () => image().user({} as never), /user\(\) needs a string or a number, got an object/],
      ['word option', () => image().workdir('/w', { expand: 'yes' as never }), /workdir\(\) option expand must be a boolean/],
      ['copy inline', () => image().copy([], '/a', { inline: [{ name: 'f', content: 1 as never }] }), /copy\(\) inline file content must be a string/],
    ]
    for (const [what, fn, message] of cases) {
      const at = line() + 1
      const e = thrown(fn)
      expect(e.code, what).toBe('INVALID_ARGUMENT')
      expect(e.message, what).toMatch(message)
      expect(e.message, what).not.toMatch(/TypeError|is not a function|is not iterable/)
      // The frame is the arrow function in `cases`, in this file; not the library's.
      expect(here(e), what).toMatch(/helpful-errors\.test\.ts:\d+$/)
      expect(at).toBeGreaterThan(0)
    }
    // The exact line: the caller's, not the library's.
    const callLine = line() + 1
    const e = thrown(() => image().copy('a', '/a', { chmod: true as never }))
    expect(here(e)).toBe(`${__filename}:${callLine}`)
    expect(e.message).toBe(`copy() option chmod must be a string or a number, got boolean true (at ${__filename}:${callLine})`)
  })
})
