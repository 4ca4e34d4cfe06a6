/**
 * The one path-in-root resolver (context sources and image rootfs paths): links followed inside
 * the root, never out of it, loops typed.
 */
import { lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import { expandGlob } from '../../src/context/glob.js'
import { hostPath, missingPaths, mkdirAllInRoot } from '../../src/snapshot/scoped-path.js'
import { MAX_LINKS, resolveInRoot } from '../../src/util/resolve-in-root.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

let root: string
let outside: string

beforeAll(async () => {
  const base = await tmpDir('ism-rootpath-')
  root = join(base, 'root')
  outside = join(base, 'outside')
  mkdirSync(join(root, 'real/etc'), { recursive: true })
  mkdirSync(join(outside, 'etc'), { recursive: true })
  writeFileSync(join(root, 'real/etc/passwd'), 'inside\n')
  writeFileSync(join(outside, 'etc/passwd'), 'outside\n')
  writeFileSync(join(root, 'file'), 'f\n')
  symlinkSync('/real/etc', join(root, 'etc')) // absolute, inside
  symlinkSync('real/etc', join(root, 'rel')) // relative
  symlinkSync('../../../../..', join(root, 'up')) // escape by ..
  symlinkSync('../outside', join(root, 'sibling')) // escape to a sibling of the root
  symlinkSync('/etc/passwd', join(root, 'abs')) // absolute host path
  symlinkSync(join(outside, 'etc'), join(root, 'hostdir')) // absolute host dir
  symlinkSync('loop', join(root, 'loop'))
  symlinkSync('b', join(root, 'a'))
  symlinkSync('a', join(root, 'b'))
  symlinkSync('missing-target', join(root, 'dangling'))
})
afterAll(async () => {
  await cleanupTmpDirs()
})

const rel = (p: string, followLast = true) => resolveInRoot(root, p, { followLast }).rel

describe('resolveInRoot', () => {
  it('follows absolute and relative links with the root as /', () => {
    expect(rel('/etc/passwd')).toBe('real/etc/passwd')
    expect(rel('etc/passwd')).toBe('real/etc/passwd')
    expect(rel('rel/passwd')).toBe('real/etc/passwd')
    const r = resolveInRoot(root, '/etc/passwd')
    expect(r.host).toBe(join(root, 'real/etc/passwd'))
    expect(r.stat?.isFile()).toBe(true)
    expect(resolveInRoot(root, '').host).toBe(root)
    expect(resolveInRoot(root, '/').stat?.isDirectory()).toBe(true)
  })

  it('clamps .. at the root, lexically and through links', () => {
    expect(rel('../../../real/etc/passwd')).toBe('real/etc/passwd')
    expect(rel('/real/../../..')).toBe('')
    expect(rel('up/etc/passwd')).toBe('real/etc/passwd')
    expect(rel('up/up/up')).toBe('')
    // `..` applies to the resolved path: etc is real/etc, so etc/.. is real
    expect(rel('etc/..')).toBe('real')
  })

  it('never leaves the root: ../../.. and absolute links land inside it', () => {
    for (const p of ['up/etc/passwd', 'abs', 'sibling/etc/passwd', 'hostdir/passwd', '../outside/etc/passwd', '/../../outside/etc/passwd']) {
      const r = resolveInRoot(root, p)
      expect(r.host === root || r.host.startsWith(`${root}/`), `${p} → ${r.host}`).toBe(true)
    }
    // /etc/passwd of the host is not what `abs` reaches: the root's own /etc (a link to /real/etc) is
    expect(resolveInRoot(root, 'abs').host).toBe(join(root, 'real/etc/passwd'))
    expect(resolveInRoot(root, 'sibling/etc/passwd').stat).toBeUndefined()
    expect(resolveInRoot(root, 'hostdir/passwd').rel).toBe(`${outside.slice(1)}/etc/passwd`)
    expect(resolveInRoot(root, 'hostdir/passwd').stat).toBeUndefined()
  })

  it('keeps missing components as written, with no stat', () => {
    const r = resolveInRoot(root, '/etc/nope/deeper')
    expect(r.rel).toBe('real/etc/nope/deeper')
    expect(r.stat).toBeUndefined()
    expect(resolveInRoot(root, 'file/below').stat).toBeUndefined() // a file on the way
    expect(rel('dangling')).toBe('missing-target')
    expect(resolveInRoot(root, 'dangling').stat).toBeUndefined()
    expect(rel('nope/../etc/passwd')).toBe('real/etc/passwd')
  })

  it('follows the last component only with followLast', () => {
    expect(rel('abs', false)).toBe('abs')
    expect(resolveInRoot(root, 'abs', { followLast: false }).stat?.isSymbolicLink()).toBe(true)
    expect(rel('etc/passwd', false)).toBe('real/etc/passwd') // links before the last are still followed
    expect(rel('loop', false)).toBe('loop')
  })

  it('throws a typed SYMLINK_LOOP for loops, naming the path', () => {
    for (const p of ['loop', '/loop/x', 'a', 'b/c']) {
      let err: unknown
      try {
        resolveInRoot(root, p)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(ImagesmithError)
      expect((err as ImagesmithError).code).toBe(ErrorCodes.SYMLINK_LOOP)
      expect((err as ImagesmithError).details).toMatchObject({ path: p, root })
    }
  })

  it(`a chain of ${MAX_LINKS} links is no loop; one more is`, async () => {
    const chain = await tmpDir('ism-chain-')
    writeFileSync(join(chain, 'end'), 'x')
    symlinkSync('end', join(chain, `l${MAX_LINKS}`))
    for (let i = MAX_LINKS - 1; i >= 0; i--) symlinkSync(`l${i + 1}`, join(chain, `l${i}`))
    expect(resolveInRoot(chain, `l1`).rel).toBe('end')
    expect(() => resolveInRoot(chain, 'l0')).toThrow(expect.objectContaining({ code: ErrorCodes.SYMLINK_LOOP }) as Error)
  })
})

describe('its users', () => {
  it('rootfs paths (snapshot/scoped-path.ts)', async () => {
    const r = await tmpDir('ism-scope-')
    mkdirSync(join(r, 'real/etc'), { recursive: true })
    symlinkSync('/real/etc', join(r, 'etc'))
    symlinkSync('/etc/passwd', join(r, 'abs'))
    expect(hostPath(r, '/abs')).toBe(join(r, 'real/etc/passwd'))
    expect(hostPath(r, '/abs', false)).toBe(join(r, 'abs'))
    expect(missingPaths(r, '/etc/a/b')).toEqual(['/real/etc/a', '/real/etc/a/b'])
    expect(mkdirAllInRoot(r, '/srv/app', 1000, 1000)).toEqual(['/srv', '/srv/app'])
    expect(lstatSync(join(r, 'srv/app')).uid).toBe(1000)
    symlinkSync('loop', join(r, 'loop'))
    expect(() => hostPath(r, '/loop/x')).toThrow(expect.objectContaining({ code: ErrorCodes.SYMLINK_LOOP }) as Error)
  })

  it('context sources (context/glob.ts): a loop is an error, not "not found"', () => {
    expect(expandGlob(root, 'etc/passwd').matches.map((m) => m.rel)).toEqual(['real/etc/passwd'])
    expect(expandGlob(root, 'nope').matches).toEqual([])
    expect(() => expandGlob(root, 'loop')).toThrow(expect.objectContaining({ code: ErrorCodes.SYMLINK_LOOP }) as Error)
  })
})
