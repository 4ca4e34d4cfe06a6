import { execFileSync } from 'node:child_process'
import { linkSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LayerEntry } from '../../src/layer/entry.js'
import { nameBytes, nameFromBytes } from '../../src/util/names.js'
import { diffWalk, DIR_MARK, treeState } from '../../src/snapshot/copy-fallback.js'
import { diffUpper } from '../../src/snapshot/diff.js'
import { recordStubs, removeStubs } from '../../src/snapshot/mount-stubs.js'
import { parseGetfattr, writeXattrs } from '../../src/snapshot/xattrs.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

afterAll(async () => {
  await cleanupTmpDirs()
})

describe('parseGetfattr', () => {
  it('reads names with escapes and hex values', () => {
    const out = Buffer.from('# file: /r/a\\012b\\\\c\nuser.x=0x6869\nuser.e=0x\n\n# file: /r/d\ntrusted.overlay.opaque=0x79\n\n', 'latin1')
    const m = parseGetfattr(out, '/r')
    expect([...m.keys()]).toEqual(['a\nb\\c', 'd'])
    expect(m.get('a\nb\\c')!['user.x']!.toString()).toBe('hi')
    expect(m.get('a\nb\\c')!['user.e']!.length).toBe(0)
    expect(m.get('d')!['trusted.overlay.opaque']!.toString()).toBe('y')
  })
})

describe('diffUpper', () => {
  it('maps an overlay upper dir to entries: whiteouts, opaque dirs, hard links, skipped mount points', async () => {
    const upper = await tmpDir('ism-upper-')
    mkdirSync(join(upper, 'd/sub'), { recursive: true })
    writeFileSync(join(upper, 'd/sub/f'), 'x')
    linkSync(join(upper, 'd/sub/f'), join(upper, 'd/hard'))
    execFileSync('mknod', [join(upper, 'd/gone'), 'c', '0', '0'])
    mkdirSync(join(upper, 'opq'))
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(upper, 'opq')])
    execFileSync('setfattr', ['-n', 'user.note', '-v', 'kept', join(upper, 'd/sub/f')])
    mkdirSync(join(upper, 'proc/self'), { recursive: true })
    mkdirSync(join(upper, 'dev'))
    writeFileSync(join(upper, 'dev/null-ish'), '')
    symlinkSync('d/sub/f', join(upper, 'ln'))
    utimesSync(join(upper, 'd/sub/f'), 2_000_000_000, 2_000_000_000)

    const entries = await diffUpper(upper, { clampMtime: 1_900_000_000 })
    expect(entries.map((e) => `${e.type}:${e.path}`)).toEqual([
      'dir:d', 'file:d/.wh.gone', 'file:d/hard', 'dir:d/sub', 'hardlink:d/sub/f',
      'dir:dev', 'symlink:ln', 'dir:opq', 'file:opq/.wh..wh..opq', 'dir:proc',
    ])
    const f = entries.find((e) => e.path === 'd/hard')!
    expect(f.mtime).toBe(1_900_000_000)
    expect(f.xattrs?.['user.note']?.toString()).toBe('kept')
    expect(entries.find((e) => e.path === 'd/sub/f')).toMatchObject({ type: 'hardlink', linkname: 'd/hard' })
    expect(entries.find((e) => e.path === 'd/.wh.gone')).toMatchObject({ type: 'file', size: 0, mode: 0 })
    expect(entries.some((e) => e.path.startsWith('proc/') || e.path.startsWith('dev/'))).toBe(false)
  })

  it('removes only the mount points: parents made for them, /proc /dev /sys and a touched /etc stay (as buildah 1.28 and docker 20.10)', async () => {
    const root = await tmpDir('ism-stub-')
    const lower = join(root, 'lower')
    const upper = join(root, 'upper')
    mkdirSync(join(lower, 'etc'), { recursive: true })
    utimesSync(join(lower, 'etc'), 1_600_000_000, 1_600_000_000)
    const stubs = recordStubs(lower, ['/etc/resolv.conf', '/etc/hosts', '/run/secrets/x', '/m/n/o', '/m/n/o/p'])
    expect(stubs.paths).toEqual(['/etc/resolv.conf', '/etc/hosts', '/run/secrets/x', '/m/n/o', '/m/n/o/p'])
    // What a runtime leaves in the upper dir: the copied-up /etc with a new mtime, its mount points
    // and the directories made for them, and the mount points of its own filesystems.
    mkdirSync(join(upper, 'etc'), { recursive: true })
    writeFileSync(join(upper, 'etc/resolv.conf'), '')
    writeFileSync(join(upper, 'etc/hosts'), '')
    mkdirSync(join(upper, 'run/secrets'), { recursive: true })
    writeFileSync(join(upper, 'run/secrets/x'), '')
    mkdirSync(join(upper, 'm/n/o/p'), { recursive: true })
    for (const d of ['proc', 'dev', 'sys']) mkdirSync(join(upper, d))
    writeFileSync(join(upper, 'made-by-step'), 'y')
    removeStubs(upper, stubs)
    const lowerStat = (rel: string) => {
      try {
        return lstatSync(join(lower, rel))
      } catch {
        return undefined
      }
    }
    const entries = await diffUpper(upper, { lowerStat })
    expect(entries.map((e) => `${e.type}:${e.path}`)).toEqual([
      'dir:dev', 'dir:etc', 'dir:m', 'dir:m/n', 'file:made-by-step', 'dir:proc', 'dir:run', 'dir:run/secrets', 'dir:sys',
    ])
  })
})

const raw = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))))

/** A tree with a hard-linked symlink, fifo and device (minor > 255) and names that are not UTF-8, under `dir`. */
async function oddTree(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true })
  symlinkSync('a', join(dir, 'sym'))
  linkSync(join(dir, 'sym'), join(dir, 'sym-hard')) // link(2) does not follow symlinks
  execFileSync('mkfifo', [join(dir, 'fifo')])
  linkSync(join(dir, 'fifo'), join(dir, 'fifo-hard'))
  execFileSync('mknod', [join(dir, 'x'), 'c', '511', '70000'])
  linkSync(join(dir, 'x'), join(dir, 'x-hard'))
  writeFileSync(raw(`${dir}/bytes-`, [0xff, 0xfe]), 'b')
  symlinkSync(raw('bytes-', [0xff, 0xfe]), raw(`${dir}/ln-`, [0xff]))
  // argv cannot carry these bytes: set the xattr through the same dump setfattr --restore reads
  await writeXattrs([[nameFromBytes(raw(`${dir}/bytes-`, [0xff, 0xfe])), 'user.note', Buffer.from('kept')]])
}

function expectOdd(entries: LayerEntry[], prefix: string): void {
  const by = (p: string) => entries.find((e) => e.path === `${prefix}${p}`)
  expect(by('sym')).toMatchObject({ type: 'symlink', linkname: 'a' })
  expect(by('sym-hard')).toMatchObject({ type: 'hardlink', linkname: `${prefix}sym`, targetType: 'symlink' })
  expect(by('fifo-hard')).toMatchObject({ type: 'hardlink', linkname: `${prefix}fifo`, targetType: 'fifo' })
  expect(by('x')).toMatchObject({ type: 'char', devmajor: 511, devminor: 70000 })
  expect(by('x-hard')).toMatchObject({ type: 'hardlink', linkname: `${prefix}x`, targetType: 'char', devmajor: 511, devminor: 70000 })
  const name = nameFromBytes(raw('bytes-', [0xff, 0xfe]))
  const file = by(name)
  expect(file).toMatchObject({ type: 'file', size: 1 })
  expect(file?.xattrs?.['user.note']?.toString()).toBe('kept')
  expect(by(nameFromBytes(raw('ln-', [0xff])))).toMatchObject({ type: 'symlink', linkname: name })
  expect(nameBytes(file!.path)).toEqual(raw(`${prefix}bytes-`, [0xff, 0xfe]))
}

describe('names, hard links and devices in the diffs', () => {
  it('parseGetfattr maps escaped bytes to the same keys the walk gives', () => {
    const out = Buffer.from('# file: /r/bytes-\\377\\376\nuser.x=0x01\n\n# file: /r/caf\\303\\251\nuser.y=0x02\n\n', 'latin1')
    const m = parseGetfattr(out, '/r')
    expect([...m.keys()]).toEqual([nameFromBytes(raw('bytes-', [0xff, 0xfe])), 'café'])
    expect(nameBytes([...m.keys()][0]!)).toEqual(raw('bytes-', [0xff, 0xfe]))
  })

  it('diffUpper: hard links of every type pair up, minor > 255 splits right, non-UTF-8 names and their xattrs survive', async () => {
    const upper = await tmpDir('ism-upper-')
    await oddTree(join(upper, 'n'))
    expectOdd(await diffUpper(upper), 'n/')
  })

  it('diffWalk (copy fallback): the same entries', async () => {
    const root = await tmpDir('ism-walk-')
    mkdirSync(join(root, 'bin'))
    const before = await treeState(root)
    await oddTree(join(root, 'n'))
    expectOdd(await diffWalk(root, before), 'n/')
  })
})

describe('copy fallback: a recreated directory is opaque whatever inode it gets', () => {
  const expected = ['tree', 'tree/.wh..wh..opq', 'tree/fresh']

  /**
   * A private ext4, so that no other process takes the freed inode first: a journalled ext4 hands
   * out the lowest free inode of the group, i.e. the one `rm -rf` just freed (checked: 20 of 20).
   */
  let ext4: string | undefined
  let scratch: string
  beforeAll(async () => {
    scratch = await tmpDir('ism-ext4-')
    try {
      execFileSync('truncate', ['-s', '32M', join(scratch, 'img')])
      execFileSync('mkfs.ext4', ['-q', '-F', join(scratch, 'img')], { stdio: 'ignore' })
      mkdirSync(join(scratch, 'm'))
      execFileSync('mount', ['-o', 'loop', join(scratch, 'img'), join(scratch, 'm')], { stdio: 'ignore' })
      ext4 = join(scratch, 'm')
    } catch {
      ext4 = undefined // no loop devices here: the mark test below still covers the logic
    }
  })
  afterAll(() => {
    if (ext4) execFileSync('umount', [ext4])
  })

  async function oldTree(under?: string): Promise<{ root: string; before: Map<string, Stats> }> {
    const root = under ? mkdtempSync(join(under, 'r-')) : await tmpDir('ism-reuse-')
    mkdirSync(join(root, 'tree/sub'), { recursive: true })
    writeFileSync(join(root, 'tree/old1'), 'o1')
    writeFileSync(join(root, 'tree/sub/old2'), 'o2')
    utimesSync(join(root, 'tree'), 1_600_000_000, 1_600_000_000)
    return { root, before: await treeState(root) }
  }

  it('rm -rf /tree && mkdir /tree with the old inode number back: an opaque dir, no per-name whiteouts', async (ctx) => {
    if (!ext4) ctx.skip()
    const { root, before } = await oldTree(ext4)
    rmSync(join(root, 'tree'), { recursive: true })
    mkdirSync(join(root, 'tree'))
    expect(lstatSync(join(root, 'tree')).ino).toBe(before.get('tree')!.ino) // the reuse really happened
    writeFileSync(join(root, 'tree/fresh'), 'f')
    const paths = (await diffWalk(root, before)).map((e) => e.path).filter((p) => p.startsWith('tree'))
    expect(paths).toEqual(expected)
  })

  it('the mark decides, not the inode: the same inode without its mark is a new dir, a moved dir is not the one it replaced', async () => {
    const { root, before } = await oldTree()
    // What inode reuse looks like to the diff: the same number, made in the step (no mark).
    rmSync(join(root, 'tree/old1'))
    rmSync(join(root, 'tree/sub'), { recursive: true })
    execFileSync('setfattr', ['-x', DIR_MARK, join(root, 'tree')])
    writeFileSync(join(root, 'tree/fresh'), 'f')
    expect(lstatSync(join(root, 'tree')).ino).toBe(before.get('tree')!.ino)
    expect((await diffWalk(root, before)).map((e) => e.path).filter((p) => p.startsWith('tree'))).toEqual(expected)

    // `mv` of another old dir onto the path: it carries the other path's mark.
    const moved = await oldTree()
    mkdirSync(join(moved.root, 'other'))
    writeFileSync(join(moved.root, 'other/fresh'), 'f')
    const before2 = await treeState(moved.root)
    rmSync(join(moved.root, 'tree'), { recursive: true })
    renameSync(join(moved.root, 'other'), join(moved.root, 'tree'))
    const entries = (await diffWalk(moved.root, before2)).map((e) => e.path)
    expect(entries).toEqual(['.wh.other', ...expected])

    // A dir left in place, only written into, stays the same dir: no opaque marker.
    const kept = await oldTree()
    writeFileSync(join(kept.root, 'tree/fresh'), 'f')
    expect((await diffWalk(kept.root, kept.before)).map((e) => e.path)).toEqual(['tree', 'tree/fresh'])
  })
})
