/**
 * A big tree's files move to a staging dir while creating them in place is slow (host/create-staging.ts),
 * and are renamed into place once written: the tree is the one written in place, and no staging dir
 * is left behind. The slowness is a clock the test gives (the ext4 scan it stands for cannot be
 * made on demand); the dirs, files and renames are real.
 */
import { execFileSync } from 'node:child_process'
import { closeSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CreateStaging } from '../../src/host/create-staging.js'
import type { LayerEntry } from '../../src/layer/entry.js'
import { sortEntries, writeLayer } from '../../src/layer/write-layer.js'
import { SnapshotTee } from '../../src/snapshot/from-entries.js'
import { ensureSnapshot } from '../../src/snapshot/unpack.js'
import { Store } from '../../src/store/store.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { treeNodes } from '../helpers/tree.js'

/** A clock whose every create takes `us()` µs. */
function clock(us: () => number): () => number {
  let t = 0
  let tick = false
  return () => {
    tick = !tick
    if (!tick) t += us()
    return t
  }
}

describe('CreateStaging', () => {
  let root: string
  beforeAll(async () => { root = await tmpDir('ism-staging-') })
  afterAll(cleanupTmpDirs)

  /** `n` files made through a staging whose every create takes `us` µs, under a fresh root (`withRoot`) or none. */
  const fill = (name: string, us: number, n: number, withRoot = true) => {
    const stage = join(root, `${name}-stage`)
    const dir = join(root, name)
    mkdirSync(stage)
    mkdirSync(dir)
    const staging = new CreateStaging(withRoot ? stage : undefined, clock(() => us))
    const made: (string | undefined)[] = []
    for (let i = 0; i < n; i++) {
      const path = join(dir, `f${i}`)
      const c = staging.create(path)
      writeFileSync(c.fd, `${i}\n`)
      closeSync(c.fd)
      made.push(c.staged)
      if (c.staged) staging.place(c.staged, path)
    }
    return { stage, dir, staging, made }
  }

  it('creates in place while creates are fast', () => {
    const { stage, dir, staging, made } = fill('fast', 20, 40)
    expect(made.every((s) => s === undefined)).toBe(true)
    staging.close()
    expect(readdirSync(stage)).toEqual([])
    expect(readdirSync(dir)).toHaveLength(40)
  })

  it('once most recent creates are slow, makes the next files in a staging dir and moves them into place; close leaves nothing', () => {
    const { stage, dir, staging, made } = fill('slow', 5000, 40)
    // The first few are judged before any move; the rest are made in staging dirs under the root.
    expect(made.slice(0, 6).every((s) => s === undefined)).toBe(true)
    expect(made.filter((s) => s !== undefined).length).toBeGreaterThan(20)
    for (const s of made) if (s !== undefined) expect(s.startsWith(`${stage}/stage.tmp-`)).toBe(true)
    expect(readdirSync(stage).length).toBeGreaterThan(0) // the staging dirs, empty now
    staging.close()
    expect(readdirSync(stage)).toEqual([])
    expect(readdirSync(dir).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `f${i}`).sort())
    for (let i = 0; i < 40; i++) expect(readFileSync(join(dir, `f${i}`), 'utf8')).toBe(`${i}\n`)
  })

  it('without a root, files are made in place however slow', () => {
    const { dir, staging, made } = fill('noroot', 5000, 20, false)
    expect(made.every((s) => s === undefined)).toBe(true)
    staging.close()
    expect(readdirSync(dir)).toHaveLength(20)
  })
})

describe('a snapshot whose files were made in staging', () => {
  let root: string
  let ctx: string
  let entries: LayerEntry[]
  beforeAll(async () => {
    root = await tmpDir('ism-staging-tee-')
    ctx = join(root, 'ctx')
    mkdirSync(ctx)
    const t = 1_700_000_000
    const files: LayerEntry[] = Array.from({ length: 30 }, (_, i) => {
      writeFileSync(join(ctx, `f${i}`), `file ${i}\n`)
      return { type: 'file', path: `app/d${i % 3}/f${i}`, mode: i % 2 ? 0o644 : 0o4755, uid: i % 4 ? 0 : 1000, gid: i % 5 ? 0 : 1001, mtime: t + i, size: `file ${i}\n`.length, source: { path: join(ctx, `f${i}`) } }
    })
    entries = sortEntries<LayerEntry>([
      { type: 'dir', path: 'app', mode: 0o755, uid: 0, gid: 0, mtime: t },
      ...[0, 1, 2].map((d): LayerEntry => ({ type: 'dir', path: `app/d${d}`, mode: d === 2 ? 0o2775 : 0o755, uid: 0, gid: d === 2 ? 1001 : 0, mtime: t + d })),
      ...files,
      // A hard link to a file made late (in staging by then): written after its target was moved into place.
      { type: 'hardlink', path: 'app/zz', mode: 0o644, uid: 0, gid: 0, mtime: t, linkname: 'app/d2/f29' },
      { type: 'symlink', path: 'app/link', mode: 0o777, uid: 0, gid: 0, mtime: t, linkname: 'd0/f0' },
    ])
  })
  afterAll(cleanupTmpDirs)

  /** A store, a staging root and a tee into `dest` whose every create is slow. */
  const slowTee = (name: string) => {
    const stage = join(root, `${name}-stage`)
    const dest = join(root, `${name}-dest`)
    mkdirSync(stage)
    mkdirSync(dest)
    // A setgid staging root of another group: files made under it must still get the tree's owners.
    execFileSync('chown', [':1002', stage])
    execFileSync('chmod', ['2775', stage])
    return { store: new Store(join(root, `${name}-store`)), stage, dest, tee: new SnapshotTee(dest, { staging: new CreateStaging(stage, clock(() => 5000)) }) }
  }

  it('is node for node the unpacked layer, with the same layer bytes, and no staging dir left', async () => {
    const { store, stage, dest, tee } = slowTee('whole')
    const layer = await writeLayer(entries, store.blobs, { tee })
    expect(await tee.finish()).toBe(true)
    expect(readdirSync(stage)).toEqual([])
    const plain = new Store(join(root, 'plain'))
    expect(await writeLayer(entries, plain.blobs)).toEqual(layer)
    expect(treeNodes(dest)).toEqual(treeNodes((await ensureSnapshot(plain, layer)).dir))
    expect(lstatSync(join(dest, 'app/zz')).ino).toBe(lstatSync(join(dest, 'app/d2/f29')).ino)
  })

  it('a tree given up part way leaves no staging dir (nor file in one)', async () => {
    const { store, stage, tee } = slowTee('fail')
    // The last file's source changed size: the layer fails after files were made in staging.
    const stale = entries.map((e) => (e.path === 'app/d2/f29' && e.type === 'file' ? { ...e, size: 99 } : e))
    await expect(writeLayer(stale, store.blobs, { tee })).rejects.toMatchObject({ code: 'SOURCE_CHANGED' })
    await tee.settle()
    expect(readdirSync(stage)).toEqual([])
  })
})
