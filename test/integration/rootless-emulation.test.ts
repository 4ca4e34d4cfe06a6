/**
 * An emulated RUN (linux/arm64 under qemu-user) in a plain user's build, through the namespace
 * worker: the F flag keeps the interpreter the kernel opened at registration, so it runs inside the
 * user namespace with no qemu in the image, in the same sandbox (private network, seccomp). And the
 * check before any step refuses a platform without a handler for the user as for root.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ociArch } from '../../src/oci/platform.js'
import { runSupport } from '../../src/ops/platform-support.js'
import type { Digest } from '../../src/oci/media-types.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { busyboxMultiLayout } from '../helpers/multi-base.js'
import { arm64Unavailable, busyboxArm64Archive, cleanupTmpDirs } from '../helpers/testbed.js'
import { runTool } from '../helpers/tools.js'
import { nodeTsArgv, readableCheckout, requireRootlessBed, ROOTLESS_USER, runAsUser, sharedTmpDir, userTmpDir } from '../helpers/rootless.js'

const bed = requireRootlessBed()
const noArm64 = ociArch() !== 'amd64' ? 'the host is not amd64' : arm64Unavailable()

interface Outcome {
  readonly ok: boolean
  readonly code?: string
  readonly message?: string
  readonly details?: Record<string, unknown>
  readonly starts: number
  readonly output: string
  readonly architecture?: string
}

let copy: string
let work: string
let script: string
let base: string
let multiScript: string

function scriptText(index: string): string {
  return `import { image } from ${JSON.stringify(index)}
const [platform, cacheDir, base, context] = process.argv.slice(2)
let starts = 0
let output = ''
try {
  const r = await (base === 'scratch' ? image().copy('build.mts', '/build.mts') : image().from(base)).run('uname -m; grep -o tap0 /proc/net/dev; grep ^Seccomp: /proc/self/status')
    .build({ context, cacheDir, platform, onProgress: (e) => {
      if (e.type === 'start') starts++
      if (e.type === 'log') output += e.data.toString()
    } })
  process.stdout.write('\\nRESULT ' + JSON.stringify({ ok: true, starts, output, architecture: r.config.architecture }) + '\\n')
} catch (e) {
  process.stdout.write('\\nRESULT ' + JSON.stringify({ ok: false, code: e.code, message: e.message, details: e.details, starts, output }) + '\\n')
}
`
}

/** Two platforms from an index base: a build-platform stage feeding a per-platform stage with a RUN. */
function multiScriptText(index: string): string {
  return `import { BUILD_PLATFORM, image } from ${JSON.stringify(index)}
const [cacheDir, base, context, dest] = process.argv.slice(2)
const started = []
try {
  const tool = image().from(base, { platform: BUILD_PLATFORM }).run('uname -m > /built-on')
  const r = await image().from(base).copy('/built-on', '/opt/', { from: tool }).run('uname -m > /arch')
    .build({ context, cacheDir, platforms: ['linux/amd64', 'linux/arm64'], network: 'none', output: { type: 'oci', dest },
      onProgress: (e) => { if (e.type === 'start') started.push(e.description) } })
  process.stdout.write('\\nRESULT ' + JSON.stringify({ ok: true, started, architectures: r.images.map((i) => i.config.architecture), layers: r.images.map((i) => i.layers.at(-1).digest) }) + '\\n')
} catch (e) {
  process.stdout.write('\\nRESULT ' + JSON.stringify({ ok: false, code: e.code, message: e.message, details: e.details, started }) + '\\n')
}
`
}

async function buildAs(platform: string, name: string, from: string = base): Promise<Outcome> {
  const cacheDir = await userTmpDir(ROOTLESS_USER, `ism-rl-emu-${name}-`)
  const r = await runAsUser(ROOTLESS_USER, nodeTsArgv(copy, script, [platform, cacheDir, from, work]), { allowFailure: true, timeoutMs: 240_000 })
  const line = r.stdout.split('\n').reverse().find((l) => l.startsWith('RESULT '))
  if (r.exitCode !== 0 || !line) throw new Error(`build as ${ROOTLESS_USER} exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`)
  return JSON.parse(line.slice(7)) as Outcome
}

beforeAll(async () => {
  if (bed.skip || noArm64 !== undefined) return
  copy = await readableCheckout()
  work = await sharedTmpDir('ism-rl-emu-')
  script = join(work, 'build.mts')
  writeFileSync(script, scriptText(join(copy, 'src', 'index.ts')))
  mkdirSync(join(work, 'bases'))
  copyFileSync(busyboxArm64Archive(), join(work, 'bases', 'busybox-arm64.tar'))
  execFileSync('chmod', ['-R', 'a+rX', work])
  chmodSync(work, 0o755)
  base = `oci-archive:${join(work, 'bases', 'busybox-arm64.tar')}`
  busyboxMultiLayout(join(work, 'bases', 'busybox-multi'))
  multiScript = join(work, 'multi.mts')
  writeFileSync(multiScript, multiScriptText(join(copy, 'src', 'index.ts')))
  execFileSync('chmod', ['-R', 'a+rX', work])
}, 300_000)

afterAll(cleanupTmpDirs)

describe.skipIf(bed.skip || noArm64 !== undefined)('rootless RUN under qemu-user', () => {
  it('a plain user\'s linux/arm64 RUN sees aarch64, on the private network and under seccomp', async () => {
    const r = await buildAs('linux/arm64', 'arm64')
    expect(r.ok, r.message).toBe(true)
    expect(r.architecture).toBe('arm64')
    const lines = r.output.split('\n')
    expect(lines[0]).toBe('aarch64')
    expect(lines).toContain('tap0')
    expect(lines).toContain('Seccomp:\t2')
  })

  it('a platform without a handler is refused before any step starts, with the fix named', async () => {
    const arch = ['riscv64', 's390x', 'ppc64le'].find((a) => runSupport({ os: 'linux', architecture: a }) === undefined)
    if (!arch) throw new Error('every candidate platform runs here')
    // From scratch with a COPY first: a base of that platform is not needed, and the COPY would be a step started.
    const r = await buildAs(`linux/${arch}`, 'missing', 'scratch')
    expect(r.ok).toBe(false)
    expect(r.code).toBe('UNSUPPORTED_PLATFORM')
    expect(r.details).toMatchObject({ platform: `linux/${arch}`, host: 'linux/amd64' })
    expect(r.message).toContain(`imagesmith binfmt --install ${arch}`)
    expect(r.starts).toBe(0)
  })

  it("a plain user's two-platform build: the build-platform stage once natively, the arm64 RUN emulated, an index of both", async () => {
    const cacheDir = await userTmpDir(ROOTLESS_USER, 'ism-rl-emu-multi-')
    const dest = join(cacheDir, 'multi.tar')
    const r = await runAsUser(ROOTLESS_USER, nodeTsArgv(copy, multiScript, [cacheDir, `oci:${join(work, 'bases', 'busybox-multi')}:latest`, work, dest]), { allowFailure: true, timeoutMs: 300_000 })
    const line = r.stdout.split('\n').reverse().find((l) => l.startsWith('RESULT '))
    if (r.exitCode !== 0 || !line) throw new Error(`build as ${ROOTLESS_USER} exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`)
    const out = JSON.parse(line.slice(7)) as { ok: boolean; message?: string; started: string[]; architectures: string[]; layers: string[] }
    expect(out.ok, out.message).toBe(true)
    expect(out.architectures).toEqual(['amd64', 'arm64'])
    // The build-platform stage's RUN started once, natively; each platform's COPY --from of its result is its own.
    expect(out.started.filter((d) => d.includes('RUN ') && d.includes('/built-on'))).toEqual(['[linux/amd64] RUN uname -m > /built-on'])
    expect(out.started.filter((d) => d.includes('COPY --from=') && d.includes('/built-on')).sort()).toEqual([
      '[linux/amd64] COPY --from=<stage> /built-on /opt/',
      '[linux/arm64] COPY --from=<stage> /built-on /opt/',
    ])
    for (const [i, arch] of ['x86_64', 'aarch64'].entries()) {
      const blob = new BlobStore(cacheDir).blobPath(out.layers[i]! as Digest)
      expect((await runTool('tar', ['-xzOf', blob, 'arch'])).stdout).toBe(`${arch}\n`)
    }
  })
})
