import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LayerEntry } from '../../src/layer/entry.js'
import { sortEntries, writeLayer } from '../../src/layer/write-layer.js'
import { ensureSnapshot, writeWithSnapshot } from '../../src/snapshot/unpack.js'
import { Store } from '../../src/store/store.js'
import { nameBytes, nameFromBytes } from '../../src/util/names.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { treeNodes } from '../helpers/tree.js'

describe('a snapshot written in the same pass as its layer', () => {
  let root: string
  let ctxDir: string
  let entries: LayerEntry[]
  beforeAll(async () => {
    root = await tmpDir('ism-snap-entries-')
    ctxDir = join(root, 'ctx')
    execFileSync('mkdir', ['-p', ctxDir])
    writeFileSync(join(ctxDir, 'a.txt'), 'hello\n')
    writeFileSync(join(ctxDir, 'tool'), Buffer.alloc(300_000, 7))
    const t = 1_700_000_000
    entries = sortEntries<LayerEntry>([
      { type: 'dir', path: 'app', mode: 0o755, uid: 0, gid: 0, mtime: t },
      { type: 'dir', path: 'app/sub', mode: 0o750, uid: 1000, gid: 1001, mtime: t + 1 },
      { type: 'file', path: 'app/a.txt', mode: 0o644, uid: 1000, gid: 1001, mtime: t + 2, size: 6, source: { path: join(ctxDir, 'a.txt') } },
      { type: 'file', path: 'app/sub/tool', mode: 0o4755, uid: 0, gid: 0, mtime: t + 3, size: 300_000, source: { path: join(ctxDir, 'tool') } },
      { type: 'file', path: 'app/inline', mode: 0o600, uid: 0, gid: 0, mtime: t, size: 3, source: { data: Buffer.from('hi\n') } },
      { type: 'symlink', path: 'app/link', mode: 0o777, uid: 0, gid: 0, mtime: t, linkname: 'a.txt' },
      { type: 'hardlink', path: 'app/sub/hard', mode: 0o4755, uid: 0, gid: 0, mtime: t + 3, linkname: 'app/sub/tool' },
      // A setgid dir: what is made in it takes the dir's group unless chowned back.
      { type: 'dir', path: 'app/sg', mode: 0o2775, uid: 0, gid: 1001, mtime: t },
      { type: 'file', path: 'app/sg/x', mode: 0o644, uid: 0, gid: 0, mtime: t, size: 3, source: { data: Buffer.from('x!\n') } },
      { type: 'dir', path: 'app/sg/d', mode: 0o755, uid: 0, gid: 0, mtime: t },
      { type: 'symlink', path: 'app/sg/l', mode: 0o777, uid: 0, gid: 0, mtime: t, linkname: 'x' },
    ])
  })
  afterAll(cleanupTmpDirs)

  /** Names in the store's snapshot folder: placed snapshots, their meta files, temp dirs. */
  const snapshotNames = (store: Store) => (existsSync(store.layout.dir('snapshots')) ? readdirSync(store.layout.dir('snapshots')).sort() : [])

  it('matches the unpacked blob node for node (modes incl. setuid, owners, mtimes, contents, links); the layer bytes are the same as without it', async () => {
    const written = new Store(join(root, 'written'))
    const unpacked = new Store(join(root, 'unpacked'))
    const layer = await writeWithSnapshot(written, (tee) => writeLayer(entries, written.blobs, { tee }))
    expect(await writeLayer(entries, unpacked.blobs)).toEqual(layer)
    const a = await ensureSnapshot(written, layer)
    const b = await ensureSnapshot(unpacked, layer)
    expect(a.whiteouts).toBe(false)
    expect(treeNodes(a.dir)).toEqual(treeNodes(b.dir))
    expect(Object.keys(treeNodes(a.dir))).toContain('app/sub/hard')
    expect(treeNodes(a.dir)['app/sg/x']).toContain(' 0:0 ')
    expect(treeNodes(a.dir)['app/sg/d']).toMatch(/mode:755 0:0 /)
    expect(existsSync(`${a.dir}.json`)).toBe(true)
    // Placed, no temp dir left: the snapshot dir and its meta only.
    expect(snapshotNames(written)).toEqual([layer.diffId.slice(7), `${layer.diffId.slice(7)}.json`])
  })

  it('when the snapshot is there already, the second one is discarded', async () => {
    const store = new Store(join(root, 'twice'))
    const l1 = await writeWithSnapshot(store, (tee) => writeLayer(entries, store.blobs, { tee }))
    const l2 = await writeWithSnapshot(store, (tee) => writeLayer(entries, store.blobs, { tee }))
    expect(l2).toEqual(l1)
    expect(snapshotNames(store)).toEqual([l1.diffId.slice(7), `${l1.diffId.slice(7)}.json`])
  })

  it('an entry the tee cannot write (a fifo) leaves no snapshot; the layer is written and a later ensureSnapshot unpacks it', async () => {
    const store = new Store(join(root, 'fifo'))
    const withFifo = sortEntries<LayerEntry>([...entries, { type: 'fifo', path: 'app/pipe', mode: 0o644, uid: 0, gid: 0, mtime: 0 }])
    const layer = await writeWithSnapshot(store, (tee) => writeLayer(withFifo, store.blobs, { tee }))
    expect(await store.blobs.has(layer.digest)).toBe(true)
    expect(snapshotNames(store)).toEqual([])
    const snap = await ensureSnapshot(store, layer)
    expect(lstatSync(join(snap.dir, 'app/pipe')).isFIFO()).toBe(true)
    expect(readFileSync(join(snap.dir, 'app/a.txt'), 'utf8')).toBe('hello\n')
  })

  it('a layer that fails (a context file changed size) leaves neither blob nor snapshot nor temp dir', async () => {
    const store = new Store(join(root, 'changed'))
    const stale = entries.map((e) => (e.path === 'app/a.txt' && e.type === 'file' ? { ...e, size: 99 } : e))
    await expect(writeWithSnapshot(store, (tee) => writeLayer(stale, store.blobs, { tee }))).rejects.toMatchObject({ code: 'SOURCE_CHANGED' })
    expect(snapshotNames(store)).toEqual([])
  })

  it('hard-links files the previous build of the step had unchanged, unless the file there no longer matches the entry; the tree is still the unpacked one', async () => {
    const store = new Store(join(root, 'reuse'))
    const old = await writeWithSnapshot(store, (tee) => writeLayer(entries, store.blobs, { tee }))
    // Same bytes, another mode: `same` says yes (as a wrong file map would), the metadata check says no.
    const next = entries.map((e) => (e.path === 'app/a.txt' ? { ...e, mode: 0o600 } : e))
    const layer = await writeWithSnapshot(store, (tee) => writeLayer(next, store.blobs, { tee }), { previous: { layer: old, same: () => true } })
    expect(layer.diffId).not.toBe(old.diffId)
    const [a, b] = [old, layer].map((l) => store.snapshotDir(l.diffId))
    expect(lstatSync(join(b!, 'app/sub/tool')).ino).toBe(lstatSync(join(a!, 'app/sub/tool')).ino)
    expect(lstatSync(join(b!, 'app/a.txt')).ino).not.toBe(lstatSync(join(a!, 'app/a.txt')).ino)
    const unpacked = new Store(join(root, 'reuse-unpacked'))
    await writeLayer(next, unpacked.blobs)
    const tidy = (t: Record<string, string>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.replace(/:nlink\d+/, '')]))
    expect(tidy(treeNodes(b!))).toEqual(tidy(treeNodes((await ensureSnapshot(unpacked, layer)).dir)))
  })

  it('hard-links an unchanged file whose name is not UTF-8, and a hard link in the layer to a linked file, in order', async () => {
    const store = new Store(join(root, 'raw-names'))
    const raw = nameFromBytes(Buffer.from([0x72, 0xff, 0x2e, 0x62, 0x69, 0x6e])) // "r\xff.bin"
    const t = 1_700_000_000
    const withRaw = sortEntries<LayerEntry>([
      ...entries,
      { type: 'file', path: `app/${raw}`, mode: 0o644, uid: 0, gid: 0, mtime: t, size: 6, source: { path: join(ctxDir, 'a.txt') } },
      { type: 'hardlink', path: 'app/zz-hard', mode: 0o644, uid: 0, gid: 0, mtime: t, linkname: `app/${raw}` },
    ])
    const old = await writeWithSnapshot(store, (tee) => writeLayer(withRaw, store.blobs, { tee }))
    const next = withRaw.map((e) => (e.path === 'app/inline' ? { ...e, mode: 0o640 } : e))
    const layer = await writeWithSnapshot(store, (tee) => writeLayer(next, store.blobs, { tee }), { previous: { layer: old, same: (e) => e.path !== 'app/inline' } })
    const [a, b] = [old, layer].map((l) => store.snapshotDir(l.diffId))
    const at = (dir: string, name: string) => lstatSync(Buffer.concat([Buffer.from(`${dir}/app/`), nameBytes(name)]))
    expect(at(b!, raw).ino).toBe(at(a!, raw).ino)
    expect(at(b!, 'zz-hard').ino).toBe(at(b!, raw).ino)
    expect(readFileSync(Buffer.concat([Buffer.from(`${b}/app/`), nameBytes(raw)]), 'utf8')).toBe('hello\n')
    expect(at(b!, 'inline').ino).not.toBe(at(a!, 'inline').ino)
    expect(at(b!, 'inline').mode & 0o7777).toBe(0o640)
  })
})
