/**
 * Store folders that hold whole trees are marked as ext4 top directories (host/tree-root.ts), so a
 * new snapshot's inodes are not allocated among ones deleted seconds ago. Where the filesystem has
 * no such flag (or chattr is missing) the folder is still made and nothing fails.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spreadDir, treeRoot } from '../../src/host/tree-root.js'
import { Store } from '../../src/store/store.js'
import { writeWithSnapshot } from '../../src/snapshot/unpack.js'
import { writeLayer } from '../../src/layer/write-layer.js'

let tmp: string
beforeEach(() => { tmp = mkdtempSync(join(tmpdir(), 'ism-treeroot-')) })
afterEach(() => rmSync(tmp, { recursive: true, force: true }))

/** The `lsattr -d` flags of `dir`, or undefined where they cannot be read (no lsattr, not ext2/3/4). */
function attrs(dir: string): string | undefined {
  try {
    return execFileSync('lsattr', ['-d', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(/\s+/)[0]
  } catch {
    return undefined
  }
}

const ext4 = (() => {
  try {
    return /^ext[234]/.test(execFileSync('stat', ['-f', '-c', '%T', tmpdir()], { encoding: 'utf8' })) && attrs(tmpdir()) !== undefined
  } catch {
    return false
  }
})()

describe('treeRoot', () => {
  it('makes the folder (with its parents) and never fails on a filesystem without the flag', async () => {
    const dir = join(tmp, 'a', 'b', 'snapshots')
    await treeRoot(dir)
    expect(statSync(dir).isDirectory()).toBe(true)
    const shm = '/dev/shm'
    if (existsSync(shm)) {
      const other = mkdtempSync(join(shm, 'ism-treeroot-'))
      try {
        await expect(treeRoot(join(other, 'x'))).resolves.toBeUndefined()
        expect(statSync(join(other, 'x')).isDirectory()).toBe(true)
      } finally {
        rmSync(other, { recursive: true, force: true })
      }
    }
  })

  it.runIf(ext4)('marks the folder as a top directory on ext4', async () => {
    const dir = join(tmp, 'marked')
    await treeRoot(dir)
    expect(attrs(dir)).toContain('T')
  })

  it.runIf(ext4)('a snapshot written with its layer goes into a marked snapshots folder', async () => {
    const store = new Store(join(tmp, 'store'))
    await writeWithSnapshot(store, (tee) => writeLayer([
      { type: 'dir', path: 'app', mode: 0o755, uid: 0, gid: 0, mtime: 0 },
      { type: 'file', path: 'app/a', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 2, source: { data: Buffer.from('a\n') } },
    ], store.blobs, { tee }))
    expect(attrs(store.layout.dir('snapshots'))).toContain('T')
  })
})

describe('spreadDir', () => {
  it('keeps one new empty dir (its probe files gone) and removes any it tried before it', async () => {
    const made: string[] = []
    const dir = await spreadDir(async () => {
      const d = join(tmp, `t${made.length}`)
      mkdirSync(d)
      made.push(d)
      return d
    })
    expect(made).toContain(dir)
    expect(readdirSync(dir)).toEqual([])
    // However many tries the disk asked for (at most 4), only the kept one is left.
    expect(made.length).toBeLessThanOrEqual(4)
    expect(readdirSync(tmp).sort()).toEqual([dir.slice(tmp.length + 1)])
  })

  it('a dir that cannot be probed is replaced by another, unprobed one: no probe file is ever left in a tree', async () => {
    const made: string[] = []
    const dir = await spreadDir(async () => {
      const d = join(tmp, `p${made.length}`)
      mkdirSync(d)
      if (made.length === 0) writeFileSync(join(d, '.probe-0'), '') // the first probe's create fails on it
      made.push(d)
      return d
    })
    expect(dir).toBe(join(tmp, 'p1'))
    expect(readdirSync(dir)).toEqual([])
    expect(existsSync(made[0]!)).toBe(false)
  })
})
