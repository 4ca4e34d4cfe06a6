/**
 * Where multi-platform builds meet emulation: a build stage on the build platform (solved once,
 * natively) feeding a per-platform final stage whose RUN for linux/arm64 runs under qemu-user, on a
 * base that is itself an index of the amd64 and arm64 busybox. Checked against buildah 1.28's
 * `build --platform linux/amd64,linux/arm64 --manifest` of the same Dockerfile, run by podman
 * `--arch arm64`, pushed to a real docker-registry and pulled per platform with skopeo.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BUILD_PLATFORM, fromDockerfile, image } from '../../src/index.js'
import { ErrorCodes, isImagesmithError } from '../../src/errors.js'
import { ociArch } from '../../src/oci/platform.js'
import type { ImageIndex } from '../../src/oci/types.js'
import { runSupport } from '../../src/ops/platform-support.js'
import type { LocalBuildResult } from '../../src/pipeline/options.js'
import { layoutConfig, layoutTree } from '../helpers/image-tree.js'
import { busyboxMultiLayout } from '../helpers/multi-base.js'
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js'
import { arm64Unavailable, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { podmanCleanup, podmanLoadAndRun, requireTools, runTool } from '../helpers/tools.js'

const bed = requireTools(['buildah', 'podman', 'skopeo', 'umoci', 'runc', 'docker-registry'], { needsRoot: true })
const noArm64 = ociArch() !== 'amd64' ? 'the host is not amd64' : arm64Unavailable()
if (!bed.skip && noArm64 !== undefined) process.stderr.write(`\n*** SKIPPING multi-platform emulation tests: ${noArm64} ***\n\n`)

const ARCHES = ['amd64', 'arm64'] as const
const PLATFORMS = ARCHES.map((a) => `linux/${a}`)
const UNAME: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64' }
/** What buildah's RUN containers leave behind (mount points of hosts, resolv.conf, …). */
const runArtefacts = /^(etc\/(hosts|resolv\.conf|hostname)|run(\/.*)?|proc|sys|dev(\/.*)?)$/

let work: string
let ctx: string
let base: string
let baseDir: string | undefined

const dockerfile = (from: string) =>
  [
    `FROM --platform=$BUILDPLATFORM ${from} AS build`,
    'RUN uname -m > /built-on && echo tool > /tool',
    `FROM ${from}`,
    'COPY --from=build /built-on /tool /opt/',
    'RUN uname -m > /arch',
    '',
  ].join('\n')

/** One platform of an OCI archive (its index), as an OCI layout tagged t. */
async function platformLayout(source: string, arch: string, name: string, tlsVerify = true): Promise<string> {
  const dest = join(work, name)
  await runTool('skopeo', ['copy', ...(tlsVerify ? [] : ['--src-tls-verify=false']), '--override-os', 'linux', '--override-arch', arch, source, `oci:${dest}:t`])
  return dest
}

const tree = async (layout: string, name: string) => new Map([...(await layoutTree(layout, 't', join(work, `${name}-fs`)))].filter(([k]) => !runArtefacts.test(k)))
/** A file of a tree unpacked by {@link tree}. */
const fileOf = (_layout: string, name: string, path: string) => readFileSync(join(work, `${name}-fs`, path), 'utf8')

/** The build stage's RUN made once, on the build platform; the final RUN once per platform. */
function checkBuildStageOnce(r: LocalBuildResult, started: readonly string[]): void {
  expect(r.vertices.filter((v) => v.description.includes('uname -m > /built-on'))).toHaveLength(1)
  expect(started.filter((d) => d.includes('uname -m > /built-on'))).toEqual(['[linux/amd64] RUN uname -m > /built-on && echo tool > /tool'])
  expect(started.filter((d) => d.includes('uname -m > /arch')).sort()).toEqual(['[linux/amd64] RUN uname -m > /arch', '[linux/arm64] RUN uname -m > /arch'])
}
const recordStarts = (into: string[]) => (e: { type: string; description?: string }) => void (e.type === 'start' && into.push(e.description!))

beforeAll(async () => {
  work = await tmpDir('ism-mp-emul-')
  ctx = join(work, 'ctx')
  mkdirSync(ctx)
  if (bed.skip || noArm64 !== undefined) return
  // buildah takes an oci: path as a repository name too, which must be lower case (mkdtemp's is not).
  baseDir = join(tmpdir(), `ism-mp-emul-base-${randomBytes(6).toString('hex')}`)
  base = `oci:${busyboxMultiLayout(baseDir)}:latest`
})
afterAll(async () => {
  await runTool('buildah', ['--root', join(work, 'bh'), '--runroot', join(work, 'bhrun'), 'rm', '--all'], { allowFailure: true })
  await runTool('umount', ['-R', join(work, 'bh')], { allowFailure: true })
  await podmanCleanup()
  if (baseDir) rmSync(baseDir, { recursive: true, force: true })
  await cleanupTmpDirs()
}, 120_000)

describe.skipIf(bed.skip || noArm64 !== undefined)('a build-platform stage feeding an emulated per-platform stage', () => {
  let ours: string
  let built: LocalBuildResult
  let reg: TestRegistry | undefined
  afterAll(async () => {
    await reg?.stop()
  }, 60_000)

  it('a Dockerfile gives an index of two images of their architectures; the build stage ran once natively, the arm64 RUN saw aarch64', async () => {
    ours = join(work, 'ours.tar')
    const path = join(ctx, 'Dockerfile')
    writeFileSync(path, dockerfile(base))
    const started: string[] = []
    built = await fromDockerfile(path, { contextDir: ctx }).build({ cacheDir: join(work, 'cache'), platforms: PLATFORMS, network: 'none', output: { type: 'oci', dest: ours }, onProgress: recordStarts(started) }) as LocalBuildResult
    const raw = JSON.parse((await runTool('skopeo', ['inspect', '--raw', `oci-archive:${ours}`])).stdout) as ImageIndex
    expect(raw.manifests.map((m) => m.platform!.architecture)).toEqual([...ARCHES])
    expect(built.images!.map((i) => i.config.architecture)).toEqual([...ARCHES])
    checkBuildStageOnce(built, started)
    for (const arch of ARCHES) {
      const layout = await platformLayout(`oci-archive:${ours}`, arch, `ours-${arch}`)
      expect(layoutConfig(layout, 't')['architecture']).toBe(arch)
      await tree(layout, `ours-${arch}`)
      expect(fileOf(layout, `ours-${arch}`, 'arch')).toBe(`${UNAME[arch]}\n`)
      // The build stage ran on the build machine for both platforms.
      expect(fileOf(layout, `ours-${arch}`, 'opt/built-on')).toBe('x86_64\n')
    }
  }, 300_000)

  it("each platform's filesystem equals buildah's --platform build of the same Dockerfile, but for what the build stage wrote (buildah runs it emulated)", async () => {
    const bh = ['--root', join(work, 'bh'), '--runroot', join(work, 'bhrun'), '--storage-driver', 'vfs']
    const path = join(ctx, 'bh.Dockerfile')
    writeFileSync(path, dockerfile(base))
    await runTool('buildah', [...bh, 'bud', '--runtime', 'runc', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--layers=false',
      '--platform', PLATFORMS.join(','), '--manifest', 'mp-emul:t', '-f', path, ctx], { timeoutMs: 300_000 })
    await runTool('buildah', [...bh, 'manifest', 'push', '--all', 'mp-emul:t', `oci:${join(work, 'theirs')}:t`])
    for (const arch of ARCHES) {
      const theirs = await platformLayout(`oci:${join(work, 'theirs')}:t`, arch, `theirs-${arch}`)
      const t = await tree(theirs, `theirs-${arch}`)
      const o = await tree(join(work, `ours-${arch}`), `ours-${arch}-again`)
      expect(fileOf(theirs, `theirs-${arch}`, 'opt/built-on')).toBe(`${UNAME[arch]}\n`)
      const differ = [...new Set([...o.keys(), ...t.keys()])].filter((k) => o.get(k) !== t.get(k))
      expect(differ).toEqual(arch === 'amd64' ? [] : ['opt/built-on'])
      expect(layoutConfig(theirs, 't')['architecture']).toBe(arch)
    }
  }, 400_000)

  it('podman runs the arm64 image with --arch arm64', async () => {
    const single = join(work, 'arm64.tar')
    await runTool('skopeo', ['copy', '--override-os', 'linux', '--override-arch', 'arm64', `oci-archive:${ours}`, `oci-archive:${single}:arm64`])
    const r = await podmanLoadAndRun(single, { arch: 'arm64', args: ['/bin/sh', '-c', 'cat /arch /opt/built-on; uname -m'] })
    expect(r.stdout).toBe('aarch64\nx86_64\naarch64\n')
  }, 120_000)

  it('the index pushes to a registry and skopeo pulls each platform', async () => {
    reg = await startTestRegistry()
    const tag = `${reg.host}/multi/emul:1`
    const r = await fromDockerfile(join(ctx, 'Dockerfile'), { contextDir: ctx }).build({ cacheDir: join(work, 'cache'), platforms: PLATFORMS, network: 'none', tags: [tag], output: { type: 'registry' }, registry: { insecure: [reg.host] } })
    expect(r.digest).toBe(built.digest) // every step cached: the same index
    const raw = JSON.parse((await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${tag}`])).stdout) as ImageIndex
    expect(raw.manifests.map((m) => m.digest)).toEqual(built.images!.map((i) => i.digest))
    for (const arch of ARCHES) {
      const pulled = await platformLayout(`docker://${tag}`, arch, `pulled-${arch}`, false)
      expect(layoutConfig(pulled, 't')['architecture']).toBe(arch)
      const p = await tree(pulled, `pulled-${arch}`)
      expect(p).toEqual(await tree(join(work, `ours-${arch}`), `ours-${arch}-pulled`))
    }
  }, 300_000)

  it('a TypeScript builder gives the same two filesystems, the build stage solved once', async () => {
    const tool = image().from(base, { platform: BUILD_PLATFORM }).run('uname -m > /built-on && echo tool > /tool')
    const app = image().from(base).copy(['/built-on', '/tool'], '/opt/', { from: tool }).run('uname -m > /arch')
    const dest = join(work, 'ts.tar')
    const started: string[] = []
    const r = await app.build({ context: ctx, cacheDir: join(work, 'cache-ts'), platforms: PLATFORMS, network: 'none', output: { type: 'oci', dest }, onProgress: recordStarts(started) }) as LocalBuildResult
    checkBuildStageOnce(r, started)
    expect(r.images!.map((i) => i.config.architecture)).toEqual([...ARCHES])
    for (const arch of ARCHES) {
      const layout = await platformLayout(`oci-archive:${dest}`, arch, `ts-${arch}`)
      expect(await tree(layout, `ts-${arch}`)).toEqual(await tree(join(work, `ours-${arch}`), `ours-${arch}-ts`))
      expect(fileOf(layout, `ts-${arch}`, 'arch')).toBe(`${UNAME[arch]}\n`)
    }
  }, 300_000)
})

describe.skipIf(bed.skip || ociArch() !== 'amd64')('a multi-platform build with a platform this host cannot run', () => {
  for (const how of ['Dockerfile', 'builder'] as const) {
    it(`(${how}) fails with UNSUPPORTED_PLATFORM naming that platform, before any step starts`, async () => {
      const arch = ['riscv64', 's390x', 'ppc64le'].find((a) => runSupport({ os: 'linux', architecture: a }) === undefined)
      if (!arch) throw new Error('every candidate platform runs here: no platform without an emulator to test with')
      writeFileSync(join(ctx, 'a.txt'), 'a\n')
      const starts: string[] = []
      const opts = { context: ctx, cacheDir: join(work, `c-missing-${how}`), platforms: ['linux/amd64', `linux/${arch}`], network: 'none' as const, onProgress: (e: { type: string; description?: string }) => void (e.type === 'start' && starts.push(e.description!)) }
      const build = how === 'builder'
        ? image().copy('a.txt', '/a.txt').run(['/bin/true']).build(opts)
        : (writeFileSync(join(ctx, 'missing.Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\nRUN ["/bin/true"]\n'), fromDockerfile(join(ctx, 'missing.Dockerfile'), { contextDir: ctx }).build(opts))
      const e = await build.then(() => undefined, (err: unknown) => err)
      expect(isImagesmithError(e)).toBe(true)
      const err = e as { code: string; message: string; details: Record<string, unknown> }
      expect(err.code).toBe(ErrorCodes.UNSUPPORTED_PLATFORM)
      expect(err.details).toMatchObject({ platform: `linux/${arch}`, host: 'linux/amd64' })
      expect(err.message).toContain(`imagesmith binfmt --install ${arch}`)
      expect(starts).toEqual([])
    })
  }
})
