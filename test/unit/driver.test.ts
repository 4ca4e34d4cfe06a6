/**
 * The driver seam: the pipeline checks a build's options, then hands the build to the driver the
 * options name (the local one by default), and reports what it throws through the error gateway.
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { image, ErrorCodes, type BuildResult, type Driver, type DriverRequest } from '../../src/index.js'
import { ImagesmithError } from '../../src/errors.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

afterAll(async () => {
  await cleanupTmpDirs()
})

/** A driver that answers with a digest only, as one handing builds to another engine may. */
function recordingDriver(answer: (req: DriverRequest) => Promise<BuildResult>): Driver & { readonly requests: DriverRequest[] } {
  const requests: DriverRequest[] = []
  return {
    name: 'recording',
    requests,
    build(req) {
      requests.push(req)
      return answer(req)
    },
  }
}

describe('build drivers', () => {
  it('hands the checked build to the driver given, which fills only what it knows; no store is made', async () => {
    const dir = await tmpDir('ism-driver-')
    const context = join(dir, 'ctx')
    await mkdir(context)
    const cacheDir = join(dir, 'cache')
    const driver = recordingDriver(async () => ({ digest: `sha256:${'a'.repeat(64)}` }))
    const app = image().from('scratch').copy('a.txt', '/a.txt').env('A', '1')
    const r = await app.build({ driver, context, cacheDir, tags: ['app:1'], labels: { l: 'v' }, buildArgs: { X: 'y' } })
    expect(r).toEqual({ digest: `sha256:${'a'.repeat(64)}` })
    expect(driver.requests).toHaveLength(1)
    const req = driver.requests[0]!
    expect(req.target.toStage()).toBe(app.toStage())
    expect(req.tags).toEqual(['app:1'])
    expect(req.labels).toEqual({ l: 'v' })
    expect(req.resolved.contextDir).toBe(context)
    expect(req.opts.buildArgs).toEqual({ X: 'y' })
    // The local driver was not run: no store was opened.
    expect(existsSync(cacheDir)).toBe(false)
  })

  it('checks the options before any driver runs: a bad tag never reaches it', async () => {
    const dir = await tmpDir('ism-driver-')
    const driver = recordingDriver(async () => ({ digest: `sha256:${'b'.repeat(64)}` }))
    const err = await image().from('scratch').build({ driver, context: dir, tags: ['Bad:Tag:x'] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ImagesmithError)
    expect((err as ImagesmithError).code).toBe(ErrorCodes.INVALID_REFERENCE)
    expect(driver.requests).toHaveLength(0)
  })

  it("reports a driver's failure through the gateway, with the step the driver says it was at", async () => {
    const dir = await tmpDir('ism-driver-')
    const driver = recordingDriver(async (req) => {
      req.position.phase = 'solve'
      req.position.step = 'RUN make'
      throw new ImagesmithError(ErrorCodes.RUN_FAILED, 'make failed', {})
    })
    const err = (await image().from('scratch').build({ driver, context: dir }).catch((e: unknown) => e)) as ImagesmithError
    expect(err.code).toBe(ErrorCodes.RUN_FAILED)
    expect(err.details.step).toBe('RUN make')
  })

  it('runs what the driver gives back to release once the build ends, whether it succeeded or failed', async () => {
    const dir = await tmpDir('ism-driver-')
    const released: string[] = []
    const driver = recordingDriver(async (req) => {
      req.onFinally(async () => void released.push(req.tags[0] ?? ''))
      if (req.tags[0] === 'fail:1') throw new ImagesmithError(ErrorCodes.INTERNAL, 'no', {})
      return { digest: `sha256:${'c'.repeat(64)}` }
    })
    await image().from('scratch').build({ driver, context: dir, tags: ['ok:1'] })
    await image().from('scratch').build({ driver, context: dir, tags: ['fail:1'] }).catch(() => undefined)
    expect(released).toEqual(['ok:1', 'fail:1'])
  })

  it('refuses a driver that is not one with INVALID_ARGUMENT', async () => {
    const dir = await tmpDir('ism-driver-')
    const err = (await image()
      .from('scratch')
      .build({ driver: { name: 'x' } as unknown as Driver, context: dir })
      .catch((e: unknown) => e)) as ImagesmithError
    expect(err.code).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(err.details.option).toBe('driver')
  })
})
