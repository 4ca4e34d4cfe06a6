/**
 * A COPY whose layer does not depend on the RUN steps before it is made while they still run; only
 * stacking waits. Asserted on the solver's own schedule record (not wall time), with the real
 * runtime. When a RUN does change what the COPY depends on (the destination dir, the `--chown`
 * user), the COPY is made again on the RUN's result and the image is exactly what waiting gives.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import type { ScheduleRecord } from '../../src/solver/scheduler.js'
import { Store } from '../../src/store/store.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { listLayerEntries } from '../helpers/layer-listing.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc'])

const find = (schedule: readonly ScheduleRecord[], prefix: string): ScheduleRecord => {
  const r = schedule.find((s) => s.description.startsWith(prefix))
  if (!r) throw new Error(`no ${prefix} in the schedule: ${schedule.map((s) => s.description).join(', ')}`)
  return r
}

describe.skipIf(bed.skip)('COPY while RUN runs', () => {
  let work: string
  let ctxDir: string

  beforeAll(async () => {
    work = await tmpDir('ism-solve-early-')
    ctxDir = join(work, 'ctx')
    mkdirSync(join(ctxDir, 'sub'), { recursive: true })
    writeFileSync(join(ctxDir, 'a.txt'), 'a\n')
    for (let i = 0; i < 200; i++) writeFileSync(join(ctxDir, 'sub', `f${i}`), `file ${i}\n`.repeat(200))
  })
  afterAll(cleanupTmpDirs)

  it('a COPY after a `RUN sleep 2` starts, and writes its layer, before the RUN ends; the image is the same as when it waits', async () => {
    const build = image().from(`oci-archive:${busyboxArchive()}`).run('sleep 2; echo slept > /slept').copy('.', '/app').run('cat /app/a.txt /slept > /both')
    const res = await build.build({ cacheDir: join(work, 'store'), context: ctxDir, noCache: true })
    const sleep = find(res.schedule, 'RUN sleep 2')
    const copy = find(res.schedule, 'COPY . /app')
    const after = find(res.schedule, 'RUN cat')
    expect(copy.start).toBeLessThan(sleep.end)
    const cpu = copy.slots.find((s) => s.pool === 'cpu')
    expect(cpu).toBeDefined()
    expect(cpu!.start).toBeLessThan(sleep.end) // the layer write itself
    expect(copy.end).toBeGreaterThanOrEqual(sleep.end) // stacking waited for the RUN
    expect(after.start).toBeGreaterThanOrEqual(copy.end)

    // The same build with the COPY first in line (nothing to overlap) gives the same layers.
    const waited = await image().from(`oci-archive:${busyboxArchive()}`).copy('.', '/app').build({ cacheDir: join(work, 'store-waited'), context: ctxDir, noCache: true })
    expect(res.layers.at(-2)!.digest).toBe(waited.layers.at(-1)!.digest)
    const both = await listLayerEntries(new Store(join(work, 'store')).blobs, res.layers.at(-1)!)
    expect(both.get('both')!.data).toBe('a\nslept\n')
  }, 60_000)

  it('a RUN that makes the destination dir 0700: the COPY is made again on the RUN result and keeps that mode', async () => {
    const store = join(work, 'store-mkdir')
    const res = await image().from(`oci-archive:${busyboxArchive()}`).run('sleep 1; mkdir -m 700 /app').copy('a.txt', '/app/').build({ cacheDir: store, context: ctxDir })
    const copy = find(res.schedule, 'COPY a.txt')
    expect(copy.start).toBeLessThan(find(res.schedule, 'RUN sleep 1').end)
    // Reported against the step's previous build (none), not against the early guess.
    expect(res.vertices.find((v) => v.description.startsWith('COPY a.txt'))?.reason).toBe('first build of this step')
    const entries = await listLayerEntries(new Store(store).blobs, res.layers.at(-1)!)
    expect(entries.get('app')?.mode).toBe(0o700)
    expect(entries.get('app/a.txt')?.type).toBe('File')
  }, 60_000)

  it('a RUN that adds the --chown user: the COPY is made on the RUN result with that user ids', async () => {
    const store = join(work, 'store-chown')
    const res = await image()
      .from(`oci-archive:${busyboxArchive()}`)
      .run("sleep 1; echo 'svc:x:1234:1234::/home/svc:/bin/sh' >> /etc/passwd; echo 'svc:x:1234:' >> /etc/group")
      .copy('a.txt', '/home/svc/a.txt', { chown: 'svc' })
      .build({ cacheDir: store, context: ctxDir, noCache: true })
    expect(find(res.schedule, 'COPY --chown=svc').start).toBeLessThan(find(res.schedule, 'RUN sleep 1').end)
    const entries = await listLayerEntries(new Store(store).blobs, res.layers.at(-1)!)
    expect(entries.get('home/svc/a.txt')).toMatchObject({ uid: 1234, gid: 1234 })
  }, 60_000)
})
