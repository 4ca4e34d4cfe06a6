/**
 * examples/build-driver, offline: a driver of the user's own wraps the local one, sees the checked
 * build (its tags and its stage, printed as a Dockerfile) and returns what the local driver built.
 */
import { spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'

const root = resolve(__dirname, '../..')
const bed = requireTools(['skopeo'], { needsRoot: true })

afterAll(() => cleanupTmpDirs())

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // cwd = the repo: tsconfig's paths map 'imagesmith' (the example's import) to src/.
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  return new Promise((res) => child.on('exit', (code) => res({ code, stdout, stderr })))
}

describe.skipIf(bed.skip)('examples/build-driver', () => {
  it('builds through the logging driver: the Dockerfile and the digest are logged, and the archive holds that image', async () => {
    const work = await tmpDir('ism-driver-example-')
    const out = join(work, 'app.tar')
    const r = await run(['examples/build-driver/build.ts', out], { BASE_IMAGE: `oci-archive:${busyboxArchive()}`, IMAGESMITH_CACHE: join(work, 'cache') })
    expect(r.code, r.stderr).toBe(0)
    const digest = r.stdout.trim()
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(r.stderr).toContain('# driver-example:1\n')
    expect(r.stderr).toMatch(/^COPY app\/ \.$/m)
    expect(r.stderr).toContain(`# built ${digest} in `)
    const inspect = JSON.parse((await runTool('skopeo', ['inspect', `oci-archive:${out}`])).stdout) as { Digest: string; Layers: string[] }
    expect(inspect.Digest).toBe(digest)
  })
})
