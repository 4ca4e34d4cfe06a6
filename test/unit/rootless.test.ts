/**
 * Rootless builds, the parts that need no namespace: subordinate ranges, the prerequisite checks
 * and the fixes their errors name, id maps, which builds need other ids, unmapped-id errors, and
 * errors and progress crossing the worker's IPC as the same classes.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ErrorCodes, ExecError, ImagesmithError, isImagesmithError } from '../../src/errors.js'
import { image } from '../../src/index.js'
import { singleIdHint, unmappedFromTar } from '../../src/host/ids.js'
import { decodeError, decodeEvent, encodeError, encodeEvent } from '../../src/rootless/ipc.js'
import { isMapped, parseIdMap, type UserNamespace } from '../../src/host/user-namespace.js'
import { mapArgs } from '../../src/rootless/namespace.js'
import { findRange, HOST_FILES, rootlessPlan, type HostFiles } from '../../src/rootless/prerequisites.js'
import { needsNetwork, needsOtherIds } from '../../src/rootless/solve-in-namespace.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

afterAll(cleanupTmpDirs)

const me = { name: 'alice', uid: 1001, gid: 1001 }

/** A host with the given files and tools (symlinks to the real ones), for the prerequisite checks. */
async function host(files: Partial<Record<keyof HostFiles, string>>, tools: readonly string[]): Promise<{ files: HostFiles; path: string }> {
  const dir = await tmpDir('rootless-host-')
  const bin = join(dir, 'bin')
  mkdirSync(bin)
  for (const t of tools) symlinkSync(`/usr/bin/true`, join(bin, t))
  const out: Record<string, string> = {}
  for (const k of Object.keys(HOST_FILES) as (keyof HostFiles)[]) {
    const p = join(dir, k)
    if (files[k] !== undefined) writeFileSync(p, files[k]!)
    out[k] = p
  }
  return { files: out as unknown as HostFiles, path: bin }
}

const ALL_TOOLS = ['unshare', 'newuidmap', 'newgidmap', 'runc']
const RANGES = { subuid: 'bob:100000:65536\nalice:200000:65536\nalice:300000:1000\n', subgid: '1001:200000:65536\n' }

async function failure(f: () => unknown): Promise<ImagesmithError> {
  try {
    await f()
  } catch (e) {
    expect(isImagesmithError(e)).toBe(true)
    return e as ImagesmithError
  }
  throw new Error('expected a failure')
}

describe('subordinate ranges', () => {
  it('takes the first range of the user, by name or by uid', () => {
    expect(findRange(RANGES.subuid, 'alice', 1001)).toEqual({ start: 200000, count: 65536 })
    expect(findRange(RANGES.subgid, 'alice', 1001)).toEqual({ start: 200000, count: 65536 })
    expect(findRange(RANGES.subuid, 'carol', 1002)).toBeUndefined()
    expect(findRange('alice:x:5\n', 'alice', 1001)).toBeUndefined()
  })

  it('maps root to the user and 1…N to the whole range (newuidmap arguments)', () => {
    expect(mapArgs(1001, { start: 200000, count: 65536 })).toEqual(['0', '1001', '1', '1', '200000', '65536'])
  })
})

describe('prerequisites, each naming its fix', () => {
  it('a user with ranges and the tools gets a ranged plan', async () => {
    const h = await host(RANGES, ALL_TOOLS)
    const plan = rootlessPlan({ needsOtherIds: true, files: h.files, path: h.path, user: me })
    expect(plan.uidRange).toEqual({ start: 200000, count: 65536 })
    expect(plan.gidRange).toEqual({ start: 200000, count: 65536 })
    expect(plan.tools.newuidmap).toBe(join(h.path, 'newuidmap'))
  })

  it('no range: a build that needs other ids fails with the usermod line; one that does not gets a single-id plan', async () => {
    const h = await host({ subuid: 'bob:100000:65536\n', subgid: '' }, ALL_TOOLS)
    const e = await failure(() => rootlessPlan({ needsOtherIds: true, files: h.files, path: h.path, user: me }))
    expect(e.code).toBe(ErrorCodes.ROOTLESS_NO_SUBIDS)
    expect(e.message).toContain('usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice')
    expect(e.details).toMatchObject({ user: 'alice' })
    const single = rootlessPlan({ needsOtherIds: false, files: h.files, path: h.path, user: me })
    expect(single.uidRange).toBeUndefined()
    expect(single.gidRange).toBeUndefined()
  })

  it('user namespaces turned off: names the sysctl', async () => {
    const off = await host({ ...RANGES, unprivilegedUsernsClone: '0\n' }, ALL_TOOLS)
    const e = await failure(() => rootlessPlan({ needsOtherIds: false, files: off.files, path: off.path, user: me }))
    expect(e.code).toBe(ErrorCodes.ROOTLESS_USERNS_DISABLED)
    expect(e.message).toContain('sysctl -w kernel.unprivileged_userns_clone=1')
    const none = await host({ ...RANGES, maxUserNamespaces: '0\n' }, ALL_TOOLS)
    const e2 = await failure(() => rootlessPlan({ needsOtherIds: false, files: none.files, path: none.path, user: me }))
    expect(e2.code).toBe(ErrorCodes.ROOTLESS_USERNS_DISABLED)
    expect(e2.message).toContain('user.max_user_namespaces')
    const apparmor = await host({ ...RANGES, apparmorRestrict: '1\n' }, ALL_TOOLS)
    const e3 = await failure(() => rootlessPlan({ needsOtherIds: false, files: apparmor.files, path: apparmor.path, user: me }))
    expect(e3.code).toBe(ErrorCodes.ROOTLESS_USERNS_DISABLED)
    expect(e3.message).toContain('sysctl -w kernel.apparmor_restrict_unprivileged_userns=0')
  })

  it('uidmap missing: names the package, only when a range is to be mapped', async () => {
    const h = await host(RANGES, ['unshare', 'runc'])
    const e = await failure(() => rootlessPlan({ needsOtherIds: false, files: h.files, path: h.path, user: me }))
    expect(e.code).toBe(ErrorCodes.ROOTLESS_TOOL_NOT_FOUND)
    expect(e.message).toContain('apt-get install uidmap')
    expect(e.details).toMatchObject({ tool: 'newuidmap', package: 'uidmap' })
    const noRange = await host({}, ['unshare', 'runc'])
    expect(rootlessPlan({ needsOtherIds: false, files: noRange.files, path: noRange.path, user: me }).uidRange).toBeUndefined()
  })

  it("the default network's tun device: checked only when a RUN uses it, the error names the chmod", async () => {
    const h = await host(RANGES, ALL_TOOLS)
    const files = { ...h.files, tun: join(h.path, 'no-such-tun') }
    expect(rootlessPlan({ needsOtherIds: false, needsNetwork: false, files, path: h.path, user: me }).uidRange).toBeDefined()
    const e = await failure(() => rootlessPlan({ needsOtherIds: false, needsNetwork: true, files, path: h.path, user: me }))
    expect(e.code).toBe(ErrorCodes.ROOTLESS_TUN_DENIED)
    expect(e.message).toContain(`chmod 0666 ${files.tun}`)
    expect(e.message).toContain("network: 'none'")
  })

  it('no OCI runtime: names the package', async () => {
    const h = await host(RANGES, ['unshare', 'newuidmap', 'newgidmap'])
    const e = await failure(() => rootlessPlan({ needsOtherIds: false, files: h.files, path: h.path, user: me }))
    expect(e.code).toBe(ErrorCodes.RUNTIME_NOT_FOUND)
    expect(e.message).toContain('apt-get install runc')
  })
})

describe('id maps', () => {
  it('parses /proc/self/uid_map and tells mapped ids', () => {
    const maps = parseIdMap('         0       1001          1\n         1     200000      65536\n')
    expect(maps).toEqual([{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 200000, count: 65536 }])
    expect(isMapped(0, maps)).toBe(true)
    expect(isMapped(65536, maps)).toBe(true)
    expect(isMapped(65537, maps)).toBe(false)
    expect(isMapped(70000, undefined)).toBe(true)
  })

  it('a RUN failing on an unmapped owner in a single-id build gets the usermod fix as a hint; other failures and ranged builds do not', () => {
    const single: UserNamespace = { uids: [{ inside: 0, outside: 1001, count: 1 }], gids: [{ inside: 0, outside: 1001, count: 1 }], singleId: true }
    const ranged: UserNamespace = { ...single, uids: [...single.uids, { inside: 1, outside: 200000, count: 65536 }], singleId: false }
    expect(singleIdHint('chown: /data: Invalid argument', single)).toContain('usermod --add-subuids')
    expect(singleIdHint('sh: nosuch: not found', single)).toBeUndefined()
    expect(singleIdHint('chown: /data: Invalid argument', ranged)).toBeUndefined()
    expect(singleIdHint('chown: /data: Invalid argument', undefined)).toBeUndefined()
  })

  it("tar's ownership failure becomes ROOTLESS_ID_UNMAPPED naming the id, the path and the fix", () => {
    const ns: UserNamespace = { uids: [{ inside: 0, outside: 1001, count: 1 }], gids: [{ inside: 0, outside: 1001, count: 1 }], singleId: true }
    const e = unmappedFromTar('tar: ./home/user: Cannot change ownership to uid 1000, gid 1000: Invalid argument\ntar: Exiting with failure status due to previous errors\n', 'sha256:abc', ns)!
    expect(e.code).toBe(ErrorCodes.ROOTLESS_ID_UNMAPPED)
    expect(e.details).toMatchObject({ id: 1000, kind: 'uid', path: '/home/user', layer: 'sha256:abc', max: 0 })
    expect(e.message).toContain('usermod --add-subuids')
    expect(e.message).toContain('insufficient UIDs')
    const ranged: UserNamespace = { uids: [{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 200000, count: 65536 }], gids: [{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 200000, count: 100 }], singleId: false }
    const g = unmappedFromTar('tar: etc/x: Cannot change ownership to uid 5, gid 4000: Invalid argument\n', 'sha256:abc', ranged)!
    expect(g.details).toMatchObject({ id: 4000, kind: 'gid', max: 100, path: '/etc/x' })
    expect(unmappedFromTar('tar: something else\n', 'sha256:abc', ns)).toBeUndefined()
    expect(unmappedFromTar('tar: a: Cannot change ownership to uid 5, gid 5: Invalid argument\n', 'sha256:abc', undefined)).toBeUndefined()
  })

  it('a build uses the user-mode network when a RUN runs on the default network', () => {
    const base = image().from('scratch')
    expect(needsNetwork(base.run('true').graph(), 'default')).toBe(true)
    expect(needsNetwork(base.run('true').graph(), 'none')).toBe(false)
    expect(needsNetwork(base.run('true', { network: 'none' }).graph(), 'default')).toBe(false)
    expect(needsNetwork(base.run('true', { network: 'host' }).graph(), 'default')).toBe(false)
    expect(needsNetwork(base.run('true', { network: 'default' }).graph(), 'host')).toBe(false)
    expect(needsNetwork(base.copy('a', '/a').graph(), 'default')).toBe(false)
  })

  it('a build needs other ids when it sets a USER or chowns to anyone but root', () => {
    const base = image().from('scratch')
    expect(needsOtherIds(base.copy('a', '/a').graph())).toBe(false)
    expect(needsOtherIds(base.user('root').copy('a', '/a', { chown: '0:root' }).graph())).toBe(false)
    expect(needsOtherIds(base.user('1000').graph())).toBe(true)
    expect(needsOtherIds(base.user('root:staff').graph())).toBe(true)
    expect(needsOtherIds(base.copy('a', '/a', { chown: 'app' }).graph())).toBe(true)
  })
})

describe('errors and progress across the worker channel', () => {
  const cross = <T>(v: T): T => structuredClone(v)

  it('an ImagesmithError comes back with its code, details, stack and cause', () => {
    const cause = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', path: '/x', syscall: 'open' })
    const e = new ImagesmithError(ErrorCodes.ROOTLESS_ID_UNMAPPED, 'uid 70000 is outside', { id: 70000, kind: 'uid' }, { cause })
    const back = decodeError(cross(encodeError(e)))
    expect(back).toBeInstanceOf(ImagesmithError)
    expect(back).toMatchObject({ code: ErrorCodes.ROOTLESS_ID_UNMAPPED, message: 'uid 70000 is outside', details: { id: 70000, kind: 'uid' }, stack: e.stack })
    expect(back.cause).toMatchObject({ message: 'EACCES: permission denied', code: 'EACCES', path: '/x', syscall: 'open' })
  })

  it('an ExecError stays an ExecError (argv, exit code, output tail)', () => {
    const back = decodeError(cross(encodeError(new ExecError(['sh', '-c', 'exit 3'], 3, 'boom'))))
    expect(back).toBeInstanceOf(ExecError)
    expect(back).toMatchObject({ code: ErrorCodes.RUN_FAILED, exitCode: 3, command: ['sh', '-c', 'exit 3'], outputTail: 'boom' })
    const hinted = decodeError(cross(encodeError(new ExecError(['sh', '-c', 'chown 1000 /data'], 1, 'chown: /data: Invalid argument', 'the hint'))))
    expect(hinted).toMatchObject({ code: ErrorCodes.RUN_FAILED, details: { hint: 'the hint' } })
    expect(hinted.message).toMatch(/Invalid argument\nthe hint$/)
  })

  it('details that cannot be cloned cross as text; log data arrives as a Buffer; error events carry rebuilt errors', () => {
    const e = new ImagesmithError(ErrorCodes.INTERNAL, 'x', { fn: () => 1, n: 2 })
    expect(decodeError(cross(encodeError(e)))).toMatchObject({ details: { n: 2, fn: expect.stringContaining('=>') } })
    const log = decodeEvent(cross(encodeEvent({ type: 'log', vertex: 'sha256:1', stream: 'stdout', data: Buffer.from('hi\n') })))
    expect(log.type === 'log' && Buffer.isBuffer(log.data) && log.data.toString()).toBe('hi\n')
    const err = decodeEvent(cross(encodeEvent({ type: 'error', vertex: 'sha256:1', description: 'RUN x', error: new ExecError(['x'], 1, '') })))
    expect(err.type === 'error' && err.error).toBeInstanceOf(ExecError)
  })
})
