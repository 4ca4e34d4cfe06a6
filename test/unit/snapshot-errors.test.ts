/** snapshot/ throws typed errors at the source: overlay limits and mount failures, failing helper tools. */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import { MAX_LOWER, mountOverlay } from '../../src/snapshot/overlay.js'
import { xargs } from '../../src/snapshot/xargs.js'
import { cleanupTmpDirs, mountsUnder, tmpDir } from '../helpers/testbed.js'

afterAll(async () => {
  await cleanupTmpDirs()
})

const failure = async (p: Promise<unknown>): Promise<ImagesmithError> => {
  const e = await p.then(() => undefined, (err: unknown) => err)
  expect(e).toBeInstanceOf(ImagesmithError)
  return e as ImagesmithError
}

describe('typed snapshot errors', () => {
  it(`more than ${MAX_LOWER} layers is MOUNT_FAILED with the count, before anything is mounted`, async () => {
    const dir = await tmpDir('ism-ovl-')
    const target = join(dir, 'm')
    mkdirSync(target)
    const lower = Array.from({ length: MAX_LOWER + 1 }, (_, i) => join(dir, `l${i}`))
    const e = await failure(mountOverlay({ lower, target, scratch: join(dir, 's') }))
    expect(e.code).toBe(ErrorCodes.MOUNT_FAILED)
    expect(e.details).toMatchObject({ path: target, layers: MAX_LOWER + 1, max: MAX_LOWER })
    expect((await failure(mountOverlay({ lower: [], target, scratch: join(dir, 's') }))).code).toBe(ErrorCodes.MOUNT_FAILED)
  })

  it('a failing overlay mount is MOUNT_FAILED naming the target, with mount\'s stderr and the cause', async () => {
    const dir = await tmpDir('ism-ovl-')
    const target = join(dir, 'm')
    mkdirSync(target)
    const e = await failure(mountOverlay({ lower: [join(dir, 'missing-a'), join(dir, 'missing-b')], target, scratch: join(dir, 's') }))
    expect(e.code).toBe(ErrorCodes.MOUNT_FAILED)
    expect(e.details.path).toBe(target)
    expect(e.cause).toBeInstanceOf(Error)
    expect(mountsUnder(dir)).toEqual([])
  })

  it('a failing mknod/setfattr batch is SNAPSHOT_FAILED naming the tool and the first path', async () => {
    const dir = await tmpDir('ism-xargs-')
    const p = join(dir, 'no', 'such', 'dir', 'node')
    const e = await failure(xargs(['sh', '-c', 'for p do mknod -- "$p" c 0 0 || exit 1; done', 'sh'], [p]))
    expect(e.code).toBe(ErrorCodes.SNAPSHOT_FAILED)
    expect(e.details).toMatchObject({ command: 'sh', path: p, count: 1 })
    expect(e.message).toContain('mknod')
  })
})
