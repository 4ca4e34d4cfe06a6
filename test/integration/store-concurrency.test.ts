/**
 * Builds sharing one store: several processes at once all succeed and agree; a build killed mid-way
 * leaves nothing that changes the next build's result. Also every local base form gives one image.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { busyboxArchive, busyboxLayout, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const bed = requireTools(['skopeo'], { needsRoot: false })

let work: string
let context: string
let scriptPath: string

function cli(args: string[], cache: string) {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, IMAGESMITH_CACHE: cache }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => child.on('exit', (code) => res({ code, stdout, stderr })))
  return { child, done }
}

beforeAll(async () => {
  work = await tmpDir('ism-conc-')
  context = join(work, 'ctx')
  // ~60 MB of incompressible files: long enough to kill a build in the middle of its layer.
  for (let d = 0; d < 30; d++) {
    mkdirSync(join(context, `d${d}`), { recursive: true })
    for (let f = 0; f < 10; f++) writeFileSync(join(context, `d${d}`, `f${f}.bin`), randomBytes(200 * 1024))
  }
  scriptPath = join(work, 'build.ts')
  writeFileSync(scriptPath, `import { image } from ${JSON.stringify(join(root, 'src', 'index.ts'))}\nexport default image().from('scratch').copy('.', '/data').env('K', 'v')\n`)
})
afterAll(() => cleanupTmpDirs())

describe('one store, many builds', () => {
  it('concurrent builds in separate processes all succeed and agree', async () => {
    const cache = join(work, 'shared-cache')
    const runs = [0, 1, 2].map((i) => cli(['build', scriptPath, '--context', context, '-o', `type=oci,dest=${join(work, `c${i}.tar`)}`, '--progress', 'quiet'], cache))
    const results = await Promise.all(runs.map((r) => r.done))
    for (const r of results) expect(r.code, r.stderr).toBe(0)
    const digests = new Set(results.map((r) => r.stdout.trim()))
    expect(digests.size).toBe(1)
    expect(readdirSync(join(cache, 'tmp'))).toEqual([])
  })

  it('a build killed mid-layer changes nothing: the next build matches a clean one', async () => {
    const clean = cli(['build', scriptPath, '--context', context, '--progress', 'quiet'], join(work, 'clean-cache'))
    const cleanDigest = (await clean.done).stdout.trim()
    expect(cleanDigest).toMatch(/^sha256:/)

    const cache = join(work, 'crash-cache')
    const out = join(work, 'killed.tar')
    const victim = cli(['build', scriptPath, '--context', context, '-o', `type=oci,dest=${out}`, '--progress', 'plain'], cache)
    await new Promise<void>((res) => {
      const poll = setInterval(() => {
        const tmp = join(cache, 'tmp')
        if (existsSync(tmp) && readdirSync(tmp).length > 0) {
          clearInterval(poll)
          res()
        }
      }, 5)
    })
    victim.child.kill('SIGKILL')
    await victim.done
    expect(existsSync(out)).toBe(false)
    const blobs = existsSync(join(cache, 'blobs', 'sha256')) ? readdirSync(join(cache, 'blobs', 'sha256')) : []
    // Whatever blobs exist are whole: each hashes to its name.
    for (const b of blobs) {
      const r = await runTool('sha256sum', [join(cache, 'blobs', 'sha256', b)])
      expect(r.stdout.split(' ')[0]).toBe(b)
    }
    const again = cli(['build', scriptPath, '--context', context, '-o', `type=oci,dest=${out}`, '--progress', 'quiet'], cache)
    const r = await again.done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe(cleanDigest)
    expect(readdirSync(join(cache, 'tmp'))).toEqual([])
  })
})

describe.skipIf(bed.skip)('local base forms', () => {
  it('oci-archive:, oci:DIR:TAG and docker-archive: of one image build the same result', async () => {
    const dockerArchive = join(work, 'busybox-docker.tar')
    await runTool('skopeo', ['copy', `oci-archive:${busyboxArchive()}`, `docker-archive:${dockerArchive}:busybox:latest`])
    const build = (ref: string) => image().from(ref).env('X', '1').build({ cacheDir: join(work, 'forms-cache'), context })
    const a = await build(`oci-archive:${busyboxArchive()}`)
    const b = await build(`oci:${busyboxLayout()}:latest`)
    const c = await build(`docker-archive:${dockerArchive}`)
    expect(b.config.rootfs.diff_ids).toEqual(a.config.rootfs.diff_ids)
    expect(c.config.rootfs.diff_ids).toEqual(a.config.rootfs.diff_ids)
    expect(b.digest).toBe(a.digest)
    expect(c.config.config.Env).toEqual(a.config.config.Env)
    await expect(build(`oci:${busyboxLayout()}:no-such-tag`)).rejects.toMatchObject({ code: 'UNKNOWN_FROM' })
    await expect(build(`oci-archive:${join(work, 'missing.tar')}`)).rejects.toMatchObject({ code: 'UNKNOWN_FROM' })
  })
})
