import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store, storeSlot } from '../../src/store/store.js'

describe('Store.shared: the stores builds open on one dir share their slots', () => {
  it('same dir (however written): one slot value; another dir or a plain instance: its own; leases stay apart', () => {
    const root = mkdtempSync(join(tmpdir(), 'ism-store-shared-'))
    const slot = storeSlot('test counter', () => ({ n: 0 }))
    const a = Store.shared(root)
    const b = Store.shared(join(root, '.', 'x', '..'))
    a.local(slot).n++
    expect(b.local(slot).n).toBe(1)
    expect(Store.shared(mkdtempSync(join(tmpdir(), 'ism-store-shared-'))).local(slot).n).toBe(0)
    expect(new Store(root).local(slot).n).toBe(0)
    expect(a.lease).not.toBe(b.lease)
  })
})
