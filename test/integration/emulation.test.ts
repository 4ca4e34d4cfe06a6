/**
 * RUN steps for a foreign architecture, run by qemu-user through binfmt_misc (the F flag: no qemu
 * inside the image), on the arm64 busybox base provisioned from Debian's busybox-static:arm64; and
 * the check before any step that refuses a platform this host has no emulator for.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { ErrorCodes } from '../../src/errors.js'
import { ociArch } from '../../src/oci/platform.js'
import { runSupport } from '../../src/ops/platform-support.js'
import type { ProgressEvent } from '../../src/solver/types.js'
import { arm64Unavailable, busyboxArm64Layout, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { podmanCleanup, podmanLoadAndRun, podmanStore, requireTools } from '../helpers/tools.js'

let root: string
let ctx: string

beforeAll(async () => {
  root = await tmpDir('ism-emul-')
  ctx = join(root, 'ctx')
  mkdirSync(ctx)
  writeFileSync(join(ctx, 'a.txt'), 'a\n')
})
afterAll(async () => {
  await podmanCleanup()
  await cleanupTmpDirs()
})

const bed = requireTools(['runc', 'podman'])
const noArm64 = arm64Unavailable()
if (noArm64 !== undefined && ociArch() !== 'arm64') process.stderr.write(`\n*** SKIPPING emulated RUN tests: ${noArm64} ***\n\n`)

describe.skipIf(bed.skip || ociArch() === 'arm64' || noArm64 !== undefined)('RUN under qemu-user (linux/arm64 on this host)', () => {
  let archive: string

  it('an arm64 RUN sees uname -m = aarch64, in the sandbox as a native one (private network, seccomp)', async () => {
    archive = join(root, 'arm64.tar')
    const logs: string[] = []
    const built = await image()
      .from(`oci:${busyboxArm64Layout()}`)
      .run(['/bin/sh', '-c', 'uname -m | tee /arch.txt; grep -o tap0 /proc/net/dev; grep ^Seccomp: /proc/self/status'])
      .build({
        context: ctx,
        cacheDir: join(root, 'cache'),
        platform: 'linux/arm64',
        output: { type: 'oci', dest: archive },
        onProgress: (e) => { if (e.type === 'log' && e.stream === 'stdout') logs.push(e.data.toString()) },
      })
    expect(built.config.architecture).toBe('arm64')
    const out = logs.join('').split('\n')
    expect(out[0]).toBe('aarch64')
    // The private network (slirp4netns's tap0 in a namespace of its own) and the seccomp filter, as natively.
    expect(out).toContain('tap0')
    expect(out).toContain('Seccomp:\t2')
  })

  it('podman runs the built arm64 image with --arch arm64', async () => {
    await podmanStore()
    const r = await podmanLoadAndRun(archive, { arch: 'arm64', args: ['/bin/sh', '-c', 'cat /arch.txt; uname -m'] })
    expect(r.stdout).toBe('aarch64\naarch64\n')
  })
})

describe.skipIf(bed.skip)('the emulator check before any step', () => {
  it('a platform without a binfmt_misc handler fails with UNSUPPORTED_PLATFORM naming it, the host and the fix, before any step starts', async () => {
    const candidates = ['riscv64', 's390x', 'ppc64le', 'arm64', 'amd64']
    const arch = candidates.find((a) => a !== ociArch() && runSupport({ os: 'linux', architecture: a }) === undefined)
    if (!arch) throw new Error('every candidate platform runs here: no platform without an emulator to test with')
    const events: ProgressEvent[] = []
    const err = await image().copy('a.txt', '/a.txt').run(['/bin/true'], { network: 'none' })
      .build({ context: ctx, cacheDir: join(root, 'c2'), platform: `linux/${arch}`, onProgress: (e) => events.push(e) })
      .then(() => undefined, (e: unknown) => e as { code: string; message: string; details: Record<string, unknown> })
    expect(err?.code).toBe(ErrorCodes.UNSUPPORTED_PLATFORM)
    expect(err?.details).toMatchObject({ platform: `linux/${arch}`, host: `linux/${ociArch()}`, step: 'RUN --network=none ["/bin/true"]' })
    expect(err?.message).toContain(`imagesmith binfmt --install ${arch}`)
    expect(err?.details.fix).toContain(`imagesmith binfmt --install ${arch}`)
    // Refused up front: not even the COPY before the RUN started.
    expect(events.filter((e) => e.type === 'start')).toEqual([])
  })
})
