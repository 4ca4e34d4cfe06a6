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
