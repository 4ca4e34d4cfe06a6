import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Store, storeSlot } from '../../src/store/store.js'

const made: string[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ism-store-shared-'))
  made.push(d)
  return d
}
afterEach(() => { for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true }) })

describe('Store.shared: the stores builds open on one dir share their slots', () => {
  it('same dir (however written): one slot value; another dir or a plain instance: its own; leases stay apart', () => {
    const root = tmp()
    const slot = storeSlot('test counter', () => ({ n: 0 }))
    const a = Store.shared(root)
    const b = Store.shared(join(root, '.', 'x', '..'))
    a.local(slot).n++
    expect(b.local(slot).n).toBe(1)
    expect(Store.shared(tmp()).local(slot).n).toBe(0)
    expect(new Store(root).local(slot).n).toBe(0)
    expect(a.lease).not.toBe(b.lease)
  })
})
