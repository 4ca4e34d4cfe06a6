import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import type { LayerEntry } from '../../src/layer/entry.js'
import { sortEntries, writeLayer } from '../../src/layer/write-layer.js'
import type { LayerRef } from '../../src/oci/types.js'
import { withRootfs } from '../../src/snapshot/rootfs.js'
import { ensureSnapshot } from '../../src/snapshot/unpack.js'
import { pendingCleanups, sweepDeadWorkDirs } from '../../src/runtime/cleanup.js'
import { Store } from '../../src/store/store.js'
import { cleanupTmpDirs, mountsUnder, tmpDir } from '../helpers/testbed.js'

const base = { uid: 0, gid: 0, mtime: 1_700_000_000 }
const dir = (path: string, mode = 0o755): LayerEntry => ({ ...base, type: 'dir', path, mode })
const file = (path: string, data: string, extra: Partial<LayerEntry> = {}): LayerEntry =>
  ({ ...base, type: 'file', path, mode: 0o644, size: Buffer.byteLength(data), source: { data: Buffer.from(data) }, ...extra }) as LayerEntry

let root: string
let store: Store
let lower: LayerRef
let upper: LayerRef

beforeAll(async () => {
  root = await tmpDir('ism-snap-')
  store = new Store(join(root, 'store'))
  await store.blobs.init()
  lower = await writeLayer(
    sortEntries([
      dir('a'), file('a/x', 'x1'), file('a/y', 'y1'),
      dir('d'), file('d/old', 'old'), dir('d/sub'), file('d/sub/deep', 'deep'),
      file('f', 'f1'),
      file('cap', 'bin', { uid: 1000, gid: 1001, mode: 0o4755, xattrs: { 'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex') } }),
    ]),
    store.blobs,
  )
  upper = await writeLayer(
    sortEntries([
      dir('a'), file('a/.wh.x', ''),
      dir('d'), file('d/.wh..wh..opq', ''), file('d/new', 'new'),
      file('f', 'f2'),
    ]),
    store.blobs,
  )
})

afterAll(async () => {
  expect(mountsUnder(root)).toEqual([])
  await cleanupTmpDirs()
})

describe('ensureSnapshot', () => {
  it('unpacks once, keeps owners, modes and security.capability', async () => {
    const [s1, s2] = await Promise.all([ensureSnapshot(store, lower), ensureSnapshot(store, lower)])
    expect(s1).toEqual(s2)
    expect(s1!.whiteouts).toBe(false)
    expect(s1!.dir).toBe(store.snapshotDir(lower.diffId))
    const st = lstatSync(join(s1!.dir, 'cap'))
    expect([st.uid, st.gid, st.mode & 0o7777, st.mtimeMs / 1000]).toEqual([1000, 1001, 0o4755, 1_700_000_000])
    const cap = execFileSync('getfattr', ['--absolute-names', '-e', 'hex', '-n', 'security.capability', join(s1!.dir, 'cap')]).toString()
    expect(cap).toContain('0x0100000200200000')
    // no temp dirs left next to it
    expect(readdirSync(join(store.root, 'snapshots')).filter((n) => n.includes('.tmp-'))).toEqual([])
  })

  it('turns OCI whiteouts into overlay whiteouts and keeps dir mtimes', async () => {
    const s = await ensureSnapshot(store, upper)
    expect(s.whiteouts).toBe(true)
    const wh = lstatSync(join(s.dir, 'a/x'))
    expect(wh.isCharacterDevice()).toBe(true)
    expect(wh.rdev).toBe(0)
    expect(existsSync(join(s.dir, 'a/.wh.x'))).toBe(false)
    expect(existsSync(join(s.dir, 'd/.wh..wh..opq'))).toBe(false)
    const opq = execFileSync('getfattr', ['--absolute-names', '-n', 'trusted.overlay.opaque', join(s.dir, 'd')]).toString()
    expect(opq).toContain('trusted.overlay.opaque="y"')
    expect(lstatSync(join(s.dir, 'a')).mtimeMs / 1000).toBe(1_700_000_000)
  })

  it('refuses a blob whose contents do not match the diffID', async () => {
    const bad = { ...lower, diffId: `sha256:${'0'.repeat(64)}` as LayerRef['diffId'] }
    await expect(ensureSnapshot(store, bad)).rejects.toMatchObject({ code: 'BLOB_CORRUPT' })
    expect(existsSync(store.snapshotDir(bad.diffId))).toBe(false)
    expect(readdirSync(join(store.root, 'snapshots')).filter((n) => n.includes('.tmp-'))).toEqual([])
  })
})

describe('withRootfs', () => {
  it('merges layers read-only and unmounts afterwards', async () => {
    let seen = ''
    const tree = await withRootfs(store, [lower, upper], {}, async (d) => {
      seen = d
      expect(mountsUnder(d)).toEqual([d])
      expect(() => execFileSync('touch', [join(d, 'new')], { stdio: 'ignore' })).toThrow()
      return {
        a: readdirSync(join(d, 'a')).sort(),
        d: readdirSync(join(d, 'd')).sort(),
        f: readFileSync(join(d, 'f'), 'utf8'),
      }
    })
    expect(tree).toEqual({ a: ['y'], d: ['new'], f: 'f2' })
    expect(existsSync(seen)).toBe(false)
    expect(mountsUnder(store.root)).toEqual([])
    expect(pendingCleanups()).toEqual([])
  })

  it('hides a lower file behind a whiteout even on lookup', async () => {
    await withRootfs(store, [lower, upper], {}, async (d) => {
      expect(existsSync(join(d, 'a/x'))).toBe(false)
      expect(existsSync(join(d, 'd/sub/deep'))).toBe(false)
    })
  })

  it('uses the snapshot itself for one plain layer, an empty dir for none', async () => {
    await withRootfs(store, [lower], {}, async (d) => expect(d).toBe(store.snapshotDir(lower.diffId)))
    let empty = ''
    await withRootfs(store, [], {}, async (d) => {
      empty = d
      expect(readdirSync(d)).toEqual([])
    })
    expect(existsSync(empty)).toBe(false)
  })

  it('stacks more layers than absolute lowerdir paths would fit in one mount option page', async () => {
    const layers: LayerRef[] = []
    for (let i = 0; i < 120; i++) layers.push(await writeLayer([dir('many'), file(`many/f${i}`, String(i))], store.blobs))
    expect(layers.map((l) => store.snapshotDir(l.diffId)).join(':').length).toBeGreaterThan(4096)
    const names = await withRootfs(store, layers, {}, async (d) => readdirSync(join(d, 'many')).length)
    expect(names).toBe(120)
    expect(mountsUnder(store.root)).toEqual([])
  })

  it('unmounts when the callback throws', async () => {
    await expect(withRootfs(store, [lower, upper], {}, async () => { throw new Error('boom') })).rejects.toThrow('boom')
    expect(mountsUnder(store.root)).toEqual([])
  })
})

describe('sweepDeadWorkDirs', () => {
  it('unmounts and removes step dirs of dead processes, keeps live ones', async () => {
    const work = join(root, 'sweep')
    const dead = join(work, 'run-999999-abcdef')
    const live = join(work, `run-${process.pid}-abcdef`)
    mkdirSync(join(dead, 'r'), { recursive: true })
    mkdirSync(live, { recursive: true })
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(dead, 'r')])
    sweepDeadWorkDirs(work)
    expect(mountsUnder(work)).toEqual([])
    expect(readdirSync(work)).toEqual([`run-${process.pid}-abcdef`])
  })
})
