/**
 * `compression=zstd` on an OCI output: layers recompressed from the store's gzip ones, with the zstd
 * media type and the same diffIDs; podman loads and runs the archive and containerd imports and
 * unpacks it; the digest is the same on a rebuild; type=docker refuses zstd with a typed error.
 */
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseOutput } from '../../src/cli/build.js'
import { ErrorCodes } from '../../src/errors.js'
import { image, type LocalBuildResult } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { podmanCleanup, podmanStore, requireTools, startDockerd, type Dockerd } from '../helpers/tools.js'
import { thrown } from '../helpers/thrown.js'

const bed = requireTools(['podman', 'runc', 'dockerd', 'ctr', 'zstd'])
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'

describe.skipIf(bed.skip)('zstd output', () => {
  let work: string
  let ctx: string
  let archive: string
  let result: LocalBuildResult
  let gzipped: LocalBuildResult
  let dockerd: Dockerd | undefined
  const app = () => image().from(`oci-archive:${busyboxArchive()}`).copy('hello.txt', '/hello.txt').run('echo ran > /ran').cmd(['sh', '-c', 'cat /hello.txt /ran'])

  beforeAll(async () => {
    work = await tmpDir()
    ctx = join(work, 'ctx')
    mkdirSync(ctx)
    writeFileSync(join(ctx, 'hello.txt'), 'hello zstd\n')
    archive = join(work, 'app-zstd.tar')
    gzipped = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store'), output: { type: 'oci', dest: join(work, 'app-gzip.tar') } }) as LocalBuildResult
    result = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store'), output: { type: 'oci', dest: archive, compression: 'zstd', compressionLevel: 3 } }) as LocalBuildResult
  }, 240_000)
  afterAll(async () => {
    await Promise.allSettled([dockerd?.stop(), podmanCleanup()])
    await cleanupTmpDirs()
  })

  it('writes every layer as tar+zstd with the same diffIDs, each blob a zstd frame of that tar', () => {
    expect(result.manifest!.layers.map((l) => l.mediaType)).toEqual(gzipped.manifest!.layers.map(() => ZSTD))
    expect(result.config!.rootfs.diff_ids).toEqual(gzipped.config!.rootfs.diff_ids)
    expect(result.digest).not.toBe(gzipped.digest)
    for (const [i, l] of result.manifest!.layers.entries()) {
      const blob = execFileSync('tar', ['-xOf', archive, `blobs/sha256/${l.digest.slice(7)}`], { maxBuffer: 64 << 20 })
      expect(blob.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))
      const tar = execFileSync('zstd', ['-dc'], { input: blob, maxBuffer: 64 << 20 })
      expect(`sha256:${createHash('sha256').update(tar).digest('hex')}`).toBe(result.config!.rootfs.diff_ids[i])
    }
  })

  it('records each conversion in the store: another export copies the zstd blobs, same digest', async () => {
    const { readdirSync } = await import('node:fs')
    expect(readdirSync(join(work, 'store', 'layer-zstd')).filter((n) => n.endsWith('.json'))).toHaveLength(result.manifest!.layers.length)
    const again = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store'), output: { type: 'oci', dest: join(work, 'again-warm.tar'), compression: 'zstd', compressionLevel: 3 } })
    expect(again.digest).toBe(result.digest)
  })

  // RUN's files get the build's time unless SOURCE_DATE_EPOCH clamps them: every build here sets it.
  it('is the same digest when built again into a fresh store', async () => {
    const again = await app().build({ sourceDateEpoch: 1_700_000_000, context: ctx, cacheDir: join(work, 'store2'), output: { type: 'oci', dest: join(work, 'again.tar'), compression: 'zstd', compressionLevel: 3 } })
    expect(again.digest).toBe(result.digest)
  })

  it('podman loads and runs it', async () => {
    const podman = await podmanStore()
    const loaded = await podman.load(archive)
    const r = await podman.run(loaded.id)
    expect(r.stdout).toBe('hello zstd\nran\n')
  })

  it('containerd imports and unpacks it', async () => {
    dockerd = await startDockerd()
    await dockerd.ctr(['images', 'import', '--index-name', 'imagesmith-test/zstd:1', archive])
    const list = await dockerd.ctr(['images', 'ls'])
    expect(list.stdout).toContain('imagesmith-test/zstd:1')
    const snap = await dockerd.ctr(['snapshots', 'ls'])
    // one committed snapshot per layer: every zstd layer was decompressed and applied
    expect(snap.stdout.trim().split('\n').length - 1).toBeGreaterThanOrEqual(result.manifest!.layers.length)
  }, 120_000)

  it('type=docker with compression=zstd is a typed error (Docker before 23.0 cannot load zstd)', () => {
    expect(thrown(() => parseOutput('type=docker,compression=zstd'))).toMatchObject({ code: ErrorCodes.OUTPUT_COMPRESSION_UNSUPPORTED, details: { output: 'docker' } })
    expect(thrown(() => parseOutput('type=docker,dest=x.tar,compression=zstd'))).toMatchObject({ code: ErrorCodes.OUTPUT_COMPRESSION_UNSUPPORTED })
    expect(parseOutput('type=oci,dest=a.tar,compression=zstd,compression-level=19,force-compression=true')).toEqual({ type: 'oci', dest: 'a.tar', compression: 'zstd', compressionLevel: 19, forceCompression: true })
  })
})
