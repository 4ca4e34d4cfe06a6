/**
 * A build for another platform: made when it can be (COPY-only, a base that has the platform), with
 * the platform in its config and in every cache key; refused with a typed error when it cannot (a
 * base without the platform, a RUN this host cannot run), leaving no output.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { ErrorCodes } from '../../src/errors.js'
import type { ImageIndex } from '../../src/oci/types.js'
import { ociArch } from '../../src/oci/platform.js'
import { runSupport } from '../../src/ops/platform-support.js'
import { busyboxLayout, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

let root: string
let ctx: string

beforeAll(async () => {
  root = await tmpDir('ism-platform-')
  ctx = join(root, 'ctx')
  mkdirSync(ctx)
  writeFileSync(join(ctx, 'a.txt'), 'a\n')
  writeFileSync(join(ctx, 'b.txt'), 'b\n')
})
afterAll(cleanupTmpDirs)

/** A platform this host runs neither natively nor through a registered emulator. */
function foreignPlatform(): string {
  const candidates = ['arm64', 'amd64', 's390x', 'riscv64', 'ppc64le']
  const arch = candidates.find((a) => a !== ociArch() && runSupport({ os: 'linux', architecture: a }) === undefined)
  if (!arch) throw new Error('every candidate platform runs here: no foreign platform to test with')
  return `linux/${arch}`
}

describe('--platform', () => {
  it('a COPY-only build for linux/arm64 says arm64 in its config', async () => {
    const r = await image().copy('a.txt', '/a.txt').build({ context: ctx, cacheDir: join(root, 'c1'), platform: 'linux/arm64' })
    expect(r.config.architecture).toBe('arm64')
    expect(r.config.os).toBe('linux')
  })

  it('the same build for amd64, then arm64, on one store: two images, the second no cache hit of the first', async () => {
    const cacheDir = join(root, 'c2')
    const app = image().copy('a.txt', '/a.txt').copy('b.txt', '/b.txt')
    const amd = await app.build({ context: ctx, cacheDir, platform: 'linux/amd64' })
    const arm = await app.build({ context: ctx, cacheDir, platform: 'linux/arm64' })
    expect(amd.config.architecture).toBe('amd64')
    expect(arm.config.architecture).toBe('arm64')
    expect(arm.digest).not.toBe(amd.digest)
    expect(arm.cacheHits).toBe(0)
    expect(arm.vertices.filter((v) => v.key !== undefined).every((v) => !v.cached)).toBe(true)
    // Keys differ by platform, and each platform hits its own.
    expect(new Set(arm.vertices.map((v) => v.key)).has(amd.vertices.find((v) => v.key)!.key)).toBe(false)
    const again = await app.build({ context: ctx, cacheDir, platform: 'linux/arm64' })
    expect(again.cacheHits).toBe(2)
    expect(again.digest).toBe(arm.digest)
  })

  it('FROM an image index takes the manifest of the build platform', async () => {
    const cacheDir = join(root, 'c3')
    // One layout holding an amd64 and an arm64 image, as a multi-platform index.
    const amdDir = join(root, 'amd-layout')
    const armDir = join(root, 'arm-layout')
    await image().copy('a.txt', '/amd.txt').build({ context: ctx, cacheDir, platform: 'linux/amd64', output: { type: 'oci-layout', dest: amdDir } })
    await image().copy('b.txt', '/arm.txt').build({ context: ctx, cacheDir, platform: 'linux/arm64', output: { type: 'oci-layout', dest: armDir } })
    const multi = join(root, 'multi')
    mkdirSync(join(multi, 'blobs', 'sha256'), { recursive: true })
    for (const d of [amdDir, armDir]) for (const b of readdirSync(join(d, 'blobs', 'sha256'))) cpSync(join(d, 'blobs', 'sha256', b), join(multi, 'blobs', 'sha256', b))
    writeFileSync(join(multi, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
    const desc = (d: string, architecture: string) => {
      const m = (JSON.parse(readFileSync(join(d, 'index.json'), 'utf8')) as ImageIndex).manifests[0]!
      return { mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { os: 'linux', architecture } }
    }
    writeFileSync(join(multi, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [desc(amdDir, 'amd64'), desc(armDir, 'arm64')] }))

    const arm = await image().from(`oci:${multi}`).copy('a.txt', '/x').build({ context: ctx, cacheDir, platform: 'linux/arm64' })
    expect(arm.config.architecture).toBe('arm64')
    expect(arm.config.history?.some((h) => h.created_by?.includes('/arm.txt'))).toBe(true)
    const amd = await image().from(`oci:${multi}`).copy('a.txt', '/x').build({ context: ctx, cacheDir, platform: 'linux/amd64' })
    expect(amd.config.architecture).toBe('amd64')
    expect(amd.config.history?.some((h) => h.created_by?.includes('/amd.txt'))).toBe(true)
  })

  it('FROM an image of another platform only fails with PLATFORM_NOT_FOUND, naming both, and writes nothing', async () => {
    // The busybox layout's index entry states no platform: only its config says amd64.
    const dest = join(root, 'wrong-base.tar')
    const other = ociArch() === 'arm64' ? 'linux/amd64' : 'linux/arm64'
    const err = await image().from(`oci:${busyboxLayout()}`).copy('a.txt', '/a.txt')
      .build({ context: ctx, cacheDir: join(root, 'c4'), platform: other, output: { type: 'oci', dest } })
      .then(() => undefined, (e: unknown) => e as { code: string; details: Record<string, unknown>; message: string })
    expect(err?.code).toBe(ErrorCodes.PLATFORM_NOT_FOUND)
    expect(err?.details.platform).toBe(other)
    expect(err?.message).toContain(`linux/${ociArch()}`)
    expect(existsSync(dest)).toBe(false)
  })

  it('a RUN for a platform this host cannot run fails with UNSUPPORTED_PLATFORM, naming the step and platform, and writes nothing', async () => {
    const platform = foreignPlatform()
    const dest = join(root, 'foreign.tar')
    const err = await image().copy('a.txt', '/a.txt').run(['/bin/true'], { network: 'none' })
      .build({ context: ctx, cacheDir: join(root, 'c5'), platform, output: { type: 'oci', dest } })
      .then(() => undefined, (e: unknown) => e as { code: string; details: Record<string, unknown> })
    expect(err?.code).toBe(ErrorCodes.UNSUPPORTED_PLATFORM)
    expect(err?.details.platform).toBe(platform)
    expect(err?.details.step).toBe('RUN --network=none ["/bin/true"]')
    expect(existsSync(dest)).toBe(false)
  })
})
