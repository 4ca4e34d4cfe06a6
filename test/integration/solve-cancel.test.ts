/**
 * One failing branch cancels its running siblings, with the real runtime: two stages from one base,
 * one `RUN sleep 30`, the other failing a moment later. The build must fail with the failing step's
 * own error, the sleeping container must be gone within a second, and nothing may stay mounted or
 * registered with runc.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image, isImagesmithError, type ProgressEvent } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, mountsUnder, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'
import { sleepersUnder } from '../helpers/processes.js'

const bed = requireTools(['runc'])

describe.skipIf(bed.skip)('a failing branch cancels its siblings', () => {
  let work: string

  beforeAll(async () => {
    work = await tmpDir('ism-solve-cancel-')
  })
  afterAll(cleanupTmpDirs)

  // The 1 s bound is the contract; a machine loaded by parallel suites may stall one attempt, a slow
  // cancel fails all three.
  it('RUN exit 3 fails the build with RUN_FAILED and kills the sibling RUN sleep 30 within 1 s', { retry: 2 }, async () => {
    const cacheDir = join(work, 'store')
    const base = image().from(`oci-archive:${busyboxArchive()}`)
    const sleeper = base.run('echo sleeping; sleep 30')
    const failing = base.run('sleep 1; exit 3')
    const app = image().from(sleeper).copy('/etc/passwd', '/copied', { from: failing })

    const unhandled: unknown[] = []
    const onUnhandled = (r: unknown) => unhandled.push(r)
    process.on('unhandledRejection', onUnhandled)
    const events: { at: number; e: ProgressEvent }[] = []
    const started = Date.now()
    let err: unknown
    try {
      err = await app
        .build({ cacheDir, context: work, noCache: true, concurrency: 2, onProgress: (e) => events.push({ at: Date.now(), e }) })
        .catch((e: unknown) => e)
    } finally {
      await new Promise((r) => setImmediate(r))
      process.off('unhandledRejection', onUnhandled)
    }
    const settled = Date.now()

    expect(isImagesmithError(err)).toBe(true)
    expect(err).toMatchObject({ code: 'RUN_FAILED', exitCode: 3 })
    const failure = events.find(({ e }) => e.type === 'error' && !(isImagesmithError(e.error) && e.error.code === 'ABORTED'))
    expect(failure?.e.type === 'error' && failure.e.description).toContain('exit 3')
    // The sleeper was running (it had printed) before the failure came.
    const sleeping = events.find(({ e }) => e.type === 'log' && e.data.toString().includes('sleeping'))
    expect(sleeping && failure && sleeping.at <= failure.at).toBe(true)
    // The build only rejects once the cancelled sibling has settled: so the container was gone by then.
    expect(settled - failure!.at).toBeLessThan(1000)
    expect(settled - started).toBeLessThan(10_000)
    expect(sleepersUnder(cacheDir, '30')).toEqual([])
    expect(mountsUnder(cacheDir)).toEqual([])
    const containers = execFileSync('runc', ['list', '-q']).toString().split('\n').filter((l) => l.startsWith(`imagesmith-${process.pid}-`))
    expect(containers).toEqual([])
    expect(unhandled).toEqual([])
  })
})
