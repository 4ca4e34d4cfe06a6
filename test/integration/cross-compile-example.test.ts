/**
 * examples/cross-compile, offline, through the CLI: the build stage runs natively once per target
 * (TARGETARCH the target's, BUILDARCH the machine's) and each platform's image copies its own
 * output; build.ts and its Dockerfile twin give the same index. Checked with skopeo and umoci.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ociArch } from '../../src/oci/platform.js'
import type { ImageIndex } from '../../src/oci/types.js'
import { layoutConfig } from '../helpers/image-tree.js'
import { busyboxMultiLayout } from '../helpers/multi-base.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const example = join(root, 'examples', 'cross-compile')
const bed = requireTools(['skopeo', 'umoci', 'runc'], { needsRoot: true })

let work: string
let base: string

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // cwd = the repo: tsconfig's paths map 'imagesmith' (the example's import) to src/.
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  return new Promise((res) => child.on('exit', (code) => res({ code, stdout, stderr })))
}

/** The hello script of one platform of an OCI archive holding an index, and that image's architecture. */
async function platformHello(archive: string, arch: string): Promise<{ hello: string; architecture: unknown }> {
  const layout = join(work, `${arch}-${Math.random().toString(16).slice(2)}`)
  await runTool('skopeo', ['copy', '--override-os', 'linux', '--override-arch', arch, `oci-archive:${archive}`, `oci:${layout}:t`])
  await runTool('umoci', ['raw', 'unpack', '--image', `${layout}:t`, `${layout}-fs`])
  return { hello: readFileSync(join(`${layout}-fs`, 'usr', 'local', 'bin', 'hello'), 'utf8'), architecture: layoutConfig(layout, 't')['architecture'] }
}

beforeAll(async () => {
  work = await tmpDir('ism-cross-example-')
  if (!bed.skip) base = `oci:${busyboxMultiLayout(join(work, 'busybox-multi'))}:latest`
})
afterAll(cleanupTmpDirs, 60_000)

describe.skipIf(bed.skip || ociArch() !== 'amd64')('examples/cross-compile', () => {
  const platforms = 'linux/amd64,linux/arm64'
  let scriptDigest = ''

  it("build.ts for two platforms: an index whose images each hold the output made for them, on the build machine", async () => {
    const dest = join(work, 'script.tar')
    const r = await cli(['build', 'examples/cross-compile/build.ts', '--context', example, '--platform', platforms, '-o', `type=oci,dest=${dest}`, '--progress', 'plain'],
      { BASE_IMAGE: base, IMAGESMITH_CACHE: join(work, 'cache') })
    expect(r.code, r.stderr).toBe(0)
    scriptDigest = r.stdout.trim()
    // The build stage's RUN ran twice (once per target), both for the build machine's platform: natively.
    expect(r.stderr.match(/^#\d+ \[linux\/\w+\] RUN mkdir -p \/out.*$/gm)?.map((l) => l.replace(/^#\d+ /, '').slice(0, 13))).toEqual(['[linux/amd64]', '[linux/amd64]'])
    const raw = JSON.parse((await runTool('skopeo', ['inspect', '--raw', `oci-archive:${dest}`])).stdout) as ImageIndex
    expect(raw.manifests.map((m) => m.platform!.architecture)).toEqual(['amd64', 'arm64'])
    for (const arch of ['amd64', 'arm64']) {
      const got = await platformHello(dest, arch)
      expect(got.architecture).toBe(arch)
      expect(got.hello.trim().split('\n').at(-1)).toBe(`echo "hello from ${arch}, built on amd64"`)
    }
  }, 180_000)

  it('the Dockerfile twin gives the same index', async () => {
    const dest = join(work, 'dockerfile.tar')
    const r = await cli(['build', '-f', join(example, 'Dockerfile'), '--build-arg', `BASE=${base}`, '--platform', platforms, '-o', `type=oci,dest=${dest}`, '--progress', 'quiet', example],
      { IMAGESMITH_CACHE: join(work, 'cache-df') })
    expect(r.code, r.stderr).toBe(0)
    expect(scriptDigest).toMatch(/^sha256:/)
    expect(r.stdout.trim()).toBe(scriptDigest)
    expect((await platformHello(dest, 'arm64')).hello).toContain('hello from arm64, built on amd64')
  }, 180_000)
})
