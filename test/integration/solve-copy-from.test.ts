/**
 * COPY --from steps start as soon as the stage they read exists: the COPY --from steps of one
 * stage that read the same source start together, not one after another, and each keeps the layer
 * it made on the way (the guess made on the stage's `FROM scratch` holds). Asserted on the
 * solver's schedule records, not on wall time.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import type { ScheduleRecord } from '../../src/solver/scheduler.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc'])

describe.skipIf(bed.skip)('COPY --from chains', () => {
  let work: string

  beforeAll(async () => {
    work = await tmpDir('ism-copy-from-')
  })
  afterAll(cleanupTmpDirs)

  it('a: RUN; b: scratch + COPY --from=a; c: scratch + three COPY --from=b; d, e: COPY --from=c — siblings start together', async () => {
    const a = image().from(`oci-archive:${busyboxArchive()}`).run('mkdir -p /x && for i in 1 2 3; do echo $i > /x/f$i; done')
    const b = image().from('scratch').copy('/x', '/x', { from: a })
    const c = image().from('scratch').copy('/x', '/x1', { from: b }).copy('/x', '/x2', { from: b }).copy('/x', '/x3', { from: b })
    const d = image().from('scratch').copy('/x1', '/d', { from: c })
    const e = image().from('scratch').copy('/x2', '/e', { from: c })
    const res = await image().from('scratch').copy('/d', '/d', { from: d }).copy('/e', '/e', { from: e }).build({ cacheDir: join(work, 'store'), context: work, noCache: true })

    const rec = (description: string): ScheduleRecord => {
      const found = res.schedule.filter((r) => r.description === description)
      expect(found, description).toHaveLength(1)
      return found[0]!
    }
    const stageB = rec('COPY --from=<stage> /x /x')
    const siblings = ['/x1', '/x2', '/x3'].map((to) => rec(`COPY --from=<stage> /x ${to}`))
    // Each starts once what it reads exists …
    for (const s of siblings) expect(s.start).toBeGreaterThanOrEqual(stageB.end)
    // … and none waits for the one before it in its stage: all three were under way at one moment.
    expect(Math.max(...siblings.map((s) => s.start))).toBeLessThan(Math.min(...siblings.map((s) => s.end)))
    // Each wrote its layer once: what it made from the stage's FROM scratch held on its real parent.
    for (const s of siblings) expect(s.slots.filter((x) => x.pool === 'cpu'), s.description).toHaveLength(1)

    const lastOfC = siblings[2]!
    for (const to of ['/d', '/e']) {
      const r = rec(`COPY --from=<stage> /x${to === '/d' ? 1 : 2} ${to}`)
      expect(r.start).toBeGreaterThanOrEqual(lastOfC.end)
    }
    expect(res.layers).toHaveLength(2)
  }, 120_000)
})
