/**
 * Local named images: a build's tags land in the store; `images`, `tag`, `rmi` and `save` work on
 * them; `from('app:1')` and `from('local:app:1')` start from them with no registry. The
 * examples/local-base scripts feed one build into another offline.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const bed = requireTools(['skopeo', 'runc'], { needsRoot: true })

let work: string
let cache: string

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // cwd = the repo: tsconfig's paths map 'imagesmith' (the examples' import) to src/.
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, IMAGESMITH_CACHE: cache, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  return new Promise((res) => child.on('exit', (code) => res({ code, stdout, stderr })))
}

interface Listed {
  repository: string
  tag: string
  digest: string
  created: string
  size: number
}
const images = async (): Promise<Listed[]> => JSON.parse((await cli(['images', '--format', 'json'])).stdout) as Listed[]

beforeAll(async () => {
  work = await tmpDir('ism-local-images-')
  cache = join(work, 'cache')
})
afterAll(() => cleanupTmpDirs())

describe.skipIf(bed.skip)('local named images', () => {
  let baseDigest = ''

  it('the local-base example: base.ts tagged mono/base:1 feeds app.ts offline, and images lists both', async () => {
    const base = await cli(['build', join(root, 'examples/local-base/base.ts'), '-t', 'mono/base:1', '--progress', 'quiet'], { BASE_IMAGE: `oci-archive:${busyboxArchive()}` })
    expect(base.code, base.stderr).toBe(0)
    baseDigest = base.stdout.trim()
    const out = join(work, 'app.tar')
    // No registry is configured and none is reachable: only the store can answer `from('mono/base:1')`.
    const app = await cli(['build', join(root, 'examples/local-base/app.ts'), '--context', join(root, 'examples/local-base'), '-t', 'mono/app:1', '-o', `type=oci,dest=${out}`, '--progress', 'quiet'], { IMAGESMITH_REGISTRY_MIRRORS: '' })
    expect(app.code, app.stderr).toBe(0)
    const appInspect = JSON.parse((await runTool('skopeo', ['inspect', `oci-archive:${out}`])).stdout) as { Digest: string; Layers: string[] }
    expect(appInspect.Digest).toBe(app.stdout.trim())
    // The app stands on the base as the store holds it: the base's layers, then the app's own.
    const baseManifest = JSON.parse(readFileSync(join(cache, 'blobs', 'sha256', baseDigest.slice(7)), 'utf8')) as { layers: { digest: string }[] }
    expect(baseManifest.layers).toHaveLength(2) // busybox + the base's RUN
    expect(appInspect.Layers.slice(0, 2)).toEqual(baseManifest.layers.map((l) => l.digest))
    expect(appInspect.Layers.length).toBeGreaterThan(2)

    const listed = await images()
    expect(listed.map((i) => `${i.repository}:${i.tag}`).sort()).toEqual(['mono/app:1', 'mono/base:1'])
    const b = listed.find((i) => i.repository === 'mono/base')!
    expect(b.digest).toBe(baseDigest)
    expect(b.size).toBeGreaterThan(500_000)
    expect(Date.parse(b.created)).toBeGreaterThan(Date.now() - 600_000)
    const table = (await cli(['images'])).stdout
    expect(table).toMatch(/^REPOSITORY\s+TAG\s+DIGEST\s+CREATED\s+SIZE/)
    expect(table).toMatch(/mono\/base\s+1\s+sha256:/)
  })

  it('tag, save (skopeo reads the same digest), from("local:…") and from by name, rmi', async () => {
    expect((await cli(['tag', 'mono/base:1', 'mono/base:latest'])).code).toBe(0)
    expect((await images()).filter((i) => i.digest === baseDigest).map((i) => i.tag).sort()).toEqual(['1', 'latest'])
    // A digest prefix names the image too, as an image id does for docker.
    expect((await cli(['tag', baseDigest.slice(7, 19), 'other/name:2'])).code).toBe(0)

    const tar = join(work, 'saved.tar')
    const saved = await cli(['save', 'mono/base:latest', '-o', tar])
    expect(saved.code, saved.stderr).toBe(0)
    const inspected = JSON.parse((await runTool('skopeo', ['inspect', `oci-archive:${tar}`])).stdout) as { Digest: string }
    expect(inspected.Digest).toBe(baseDigest)

    const viaLocal = await image().from('local:mono/base:latest').env('X', '1').build({ cacheDir: cache, context: work })
    const viaName = await image().from('mono/base:1').env('X', '1').build({ cacheDir: cache, context: work })
    expect(viaLocal.digest).toBe(viaName.digest)
    expect(viaLocal.layers.map((l) => l.digest)).toEqual((await runTool('skopeo', ['inspect', `oci-archive:${tar}`]).then((r) => JSON.parse(r.stdout) as { Layers: string[] })).Layers)

    // --pull (pull: true) asks the registry even though the store has the name: this bed has none to ask.
    await expect(image().from('mono/base:1').env('X', '1').build({ cacheDir: cache, context: work, pull: true })).rejects.toThrow(/docker\.io\/mono\/base:1/)

    const rmi = await cli(['rmi', 'mono/base:latest', 'other/name:2'])
    expect(rmi.code, rmi.stderr).toBe(0)
    expect(rmi.stdout).toContain('Untagged: mono/base:latest')
    expect((await images()).map((i) => `${i.repository}:${i.tag}`).sort()).toEqual(['mono/app:1', 'mono/base:1'])
    // Blobs stay until a prune: the manifest is still in the store.
    expect(existsSync(join(cache, 'blobs', 'sha256', baseDigest.slice(7)))).toBe(true)
    await expect(image().from('local:mono/base:latest').build({ cacheDir: cache, context: work })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' })
    const missing = await cli(['save', 'nope:1', '-o', join(work, 'nope.tar')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('error [IMAGE_NOT_FOUND]')
  })
})
