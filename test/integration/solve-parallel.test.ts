/**
 * RUN containers have their own pool, apart from the CPU-bound work: four independent stages that
 * each `sleep 2` run at once on a 2-core machine, with the real runtime. Asserted on the solver's
 * schedule record, not on wall time.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc'])

describe.skipIf(bed.skip)('independent RUN stages run in parallel', () => {
  let work: string

  beforeAll(async () => {
    work = await tmpDir('ism-solve-parallel-')
  })
  afterAll(cleanupTmpDirs)

  it('a 4-stage build whose stages each sleep 2 s holds all four RUN containers at once', async () => {
    const base = image().from(`oci-archive:${busyboxArchive()}`)
    const stages = [1, 2, 3, 4].map((n) => base.run(`sleep 2; echo ${n} > /s${n}`))
    let app = image().from(base)
    for (const [i, s] of stages.entries()) app = app.copy(`/s${i + 1}`, `/s${i + 1}`, { from: s })
    const res = await app.build({ cacheDir: join(work, 'store'), context: work, noCache: true })

    const runs = res.schedule.filter((r) => r.description.includes('sleep 2'))
    expect(runs).toHaveLength(4)
    const containers = runs.map((r) => r.slots.find((s) => s.pool === 'run')!)
    expect(containers.every(Boolean)).toBe(true)
    // All four containers were running at one moment: the last to start began before the first ended.
    expect(Math.max(...containers.map((s) => s.start))).toBeLessThan(Math.min(...containers.map((s) => s.end)))
    // Each RUN's layer was written in a CPU slot, after its container.
    for (const r of runs) {
      const cpu = r.slots.find((s) => s.pool === 'cpu')
      const run = r.slots.find((s) => s.pool === 'run')!
      expect(cpu && cpu.start >= run.end).toBe(true)
    }
    // The COPYs that stack the results wait for their RUNs.
    const copies = res.schedule.filter((c) => c.description.includes('COPY'))
    expect(copies).toHaveLength(4)
    for (const c of copies) expect(c.start).toBeGreaterThanOrEqual(Math.min(...runs.map((x) => x.end)))
  }, 60_000)
})
