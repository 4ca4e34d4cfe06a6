/**
 * A step that first reads its base image's layers (WORKDIR, COPY's destination lookup) or unpacks
 * them (RUN) shows that work as a line of its own, and its own time leaves it out.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image, type ProgressEvent } from '../../src/index.js'
import { cleanupTmpDirs, debianLayout, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools([], { needsRoot: false })
let work: string

beforeAll(async () => {
  work = await tmpDir('ism-substep-')
})
afterAll(() => cleanupTmpDirs())

describe.skipIf(bed.skip)('work a step waits on', () => {
  it("reading the base's layers is its own line under the step, not in the step's time", async () => {
    type Span = Extract<ProgressEvent, { type: 'start' | 'done' }>
    const spanOf = (e: ProgressEvent): e is Span => e.type === 'start' || e.type === 'done'
    const events: Span[] = []
    await image().from(`oci:${debianLayout()}`).workdir('/app/sub').build({ context: work, cacheDir: join(work, 'cache'), onProgress: (e) => { if (spanOf(e)) events.push(e) } })
    const step = events.find((e) => e.type === 'start' && e.description.startsWith('WORKDIR'))!
    const stepDone = events.find((e) => e.type === 'done' && e.vertex === step.vertex) as Extract<ProgressEvent, { type: 'done' }>
    const sub = events.find((e) => e.type === 'start' && e.parent === step.vertex)
    expect(sub?.description).toBe('[internal] read base layers (1 layer)')
    const subDone = events.find((e) => e.type === 'done' && e.vertex === sub!.vertex) as Extract<ProgressEvent, { type: 'done' }>
    expect(subDone.parent).toBe(step.vertex)
    // The line comes inside the step's span, and the step's own time is what is left of the span.
    const order = events.map((e) => e.type + e.vertex)
    expect(order.indexOf(`start${sub!.vertex}`)).toBeGreaterThan(order.indexOf(`start${step.vertex}`))
    expect(order.indexOf(`done${sub!.vertex}`)).toBeLessThan(order.indexOf(`done${step.vertex}`))
    expect(subDone.ms).toBeGreaterThan(0)
    const span = stepDone.time! - step.time!
    expect(stepDone.ms + subDone.ms).toBeLessThanOrEqual(span + 2)
    // A path not looked up before is read for again: one such line, as before.
    const again: Span[] = []
    await image().from(`oci:${debianLayout()}`).workdir('/app/other').build({ context: work, cacheDir: join(work, 'cache'), onProgress: (e) => { if (spanOf(e)) again.push(e) } })
    expect(again.filter((e) => e.type === 'start' && e.parent !== undefined).map((e) => e.description)).toEqual(['[internal] read base layers (1 layer)'])
  })
})
