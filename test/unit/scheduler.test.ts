import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { LayerEntry } from '../../src/layer/entry.js'
import { writeLayer } from '../../src/layer/write-layer.js'
import { cpuSlotOf, createLimits, recordingLimits, type SlotRecord } from '../../src/solver/scheduler.js'
import { BlobStore } from '../../src/store/blob-store.js'

const root = mkdtempSync(join(tmpdir(), 'ism-scheduler-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

function bigLayer(name: string, mib: number): LayerEntry[] {
  const host = join(root, name)
  // Incompressible-ish data so gzip has real work to do.
  const data = Buffer.alloc(mib << 20)
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i)
  writeFileSync(host, data)
  return [{ path: name, mode: 0o644, uid: 0, gid: 0, mtime: 0, type: 'file', size: data.length, source: { path: host } }]
}

describe('resource pools', () => {
  it('rejects a limit that is not a positive integer', () => {
    expect(() => createLimits({ cpu: 0 })).toThrow(/cpu limit/)
    expect(() => createLimits({ run: 1.5 })).toThrow(/run limit/)
  })

  it('two layers written with one CPU slot never compress at once, and both still land', async () => {
    const store = new BlobStore(mkdtempSync(join(root, 'store-')))
    const slots: SlotRecord[] = []
    const limits = recordingLimits(createLimits({ cpu: 1 }), slots, Date.now())
    const [a, b] = await Promise.all([
      writeLayer(bigLayer('a', 8), store, { compression: 'gzip', ...cpuSlotOf(limits) }),
      writeLayer(bigLayer('b', 8), store, { compression: 'gzip', ...cpuSlotOf(limits) }),
    ])
    expect(a.digest).not.toBe(b.digest)
    expect(slots.map((s) => s.pool)).toEqual(['cpu', 'cpu'])
    const [first, second] = [...slots].sort((x, y) => x.start - y.start)
    expect(second!.start).toBeGreaterThanOrEqual(first!.end)
  })

  it('an abort withdraws callers still waiting for a slot but never cuts short the one holding it', async () => {
    const limits = createLimits({ run: 1 })
    const ac = new AbortController()
    let release!: () => void
    const holder = limits.run.add(() => new Promise<string>((r) => { release = () => r('finished') }), { signal: ac.signal })
    let waiterRan = false
    const waiter = limits.run.add(async () => { waiterRan = true }, { signal: ac.signal })
    ac.abort()
    await expect(waiter).rejects.toMatchObject({ code: 'ABORTED' })
    let settled = false
    void holder.then(() => (settled = true))
    await new Promise((r) => setImmediate(r))
    expect(settled).toBe(false) // still running: its caller must not clean up under it
    release()
    await expect(holder).resolves.toBe('finished')
    expect(waiterRan).toBe(false)
    // The slot is free again.
    await expect(limits.run.add(async () => 'next')).resolves.toBe('next')
  })
})
