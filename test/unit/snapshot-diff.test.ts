import { execFileSync } from 'node:child_process'
import { linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync, lstatSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { diffUpper } from '../../src/snapshot/diff.js'
import { recordStubs, removeStubs } from '../../src/snapshot/mount-stubs.js'
import { parseGetfattr } from '../../src/snapshot/xattrs.js'
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

  it('removes mount stubs and drops dirs left unchanged', async () => {
    const root = await tmpDir('ism-stub-')
    const lower = join(root, 'lower')
    const upper = join(root, 'upper')
    mkdirSync(join(lower, 'etc'), { recursive: true })
    utimesSync(join(lower, 'etc'), 1_600_000_000, 1_600_000_000)
    const stubs = recordStubs(lower, ['/etc/resolv.conf', '/run/secrets/x', '/proc'])
    expect(stubs.paths).toEqual(['/etc/resolv.conf', '/run', '/run/secrets', '/run/secrets/x', '/proc'])
    // what a runtime leaves in the upper dir: the copied-up /etc with a new mtime, and its mount points
    mkdirSync(join(upper, 'etc'), { recursive: true })
    writeFileSync(join(upper, 'etc/resolv.conf'), '')
    mkdirSync(join(upper, 'run/secrets'), { recursive: true })
    writeFileSync(join(upper, 'run/secrets/x'), '')
    mkdirSync(join(upper, 'proc'))
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
    expect(entries.map((e) => e.path)).toEqual(['made-by-step'])
  })
})
