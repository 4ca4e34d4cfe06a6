/**
 * The rootless test bed itself: the test users provision.sh makes, the readable copy of this
 * checkout they run from, the bases they can read, and the user namespace the RUN suites rerun in.
 * When one of these breaks, this suite says which before the rootless suites fail obscurely.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanupTmpDirs } from '../helpers/testbed.js'
import {
  inUserNamespaceArgv, nodeTsArgv, NORANGE_USER, readableCheckout, readableTestbed, requireRootlessBed, ROOTLESS_SUBIDS,
  ROOTLESS_USER, runAsUser, userInfo,
} from '../helpers/rootless.js'

const bed = requireRootlessBed()

describe.skipIf(bed.skip)('rootless test bed', () => {
  let copy: string
  let bases: string

  beforeAll(async () => {
    copy = await readableCheckout()
    bases = await readableTestbed()
  })

  afterAll(async () => {
    await cleanupTmpDirs()
  })

  it('the users exist: imagesmith-rootless owns exactly 200000-265535, imagesmith-norange no range', () => {
    const rootless = userInfo(ROOTLESS_USER)!
    const norange = userInfo(NORANGE_USER)!
    expect(rootless.uid).toBeGreaterThan(0)
    expect(norange.uid).toBeGreaterThan(0)
    for (const file of ['/etc/subuid', '/etc/subgid']) {
      const lines = readFileSync(file, 'utf8').split('\n')
      expect(lines.filter((l) => l.startsWith(`${ROOTLESS_USER}:`))).toEqual([`${ROOTLESS_USER}:${ROOTLESS_SUBIDS.first}:${ROOTLESS_SUBIDS.count}`])
      expect(lines.filter((l) => l.startsWith(`${NORANGE_USER}:`))).toEqual([])
    }
  })

  it('the user runs TypeScript of the readable copy and reads the bases, as itself with a plain login PATH', async () => {
    const script = join(copy, 'test', 'fixtures', 'rootless', 'whoami.ts')
    const r = await runAsUser(ROOTLESS_USER, nodeTsArgv(copy, script, [join(bases, 'busybox.tar')]), { cwd: copy })
    const seen = JSON.parse(r.stdout) as { uid: number; home: string; path: string; baseBytes: number }
    expect(seen).toEqual({ uid: userInfo(ROOTLESS_USER)!.uid, home: userInfo(ROOTLESS_USER)!.home, path: '/usr/local/bin:/usr/bin:/bin', baseBytes: readFileSync(join(bases, 'busybox.tar')).length })
  })

  it('in its namespace the user is root, its own id mapped to 0 and its range to 1…65536, with every capability', async () => {
    const r = await runAsUser(ROOTLESS_USER, inUserNamespaceArgv(['sh', '-c', 'id -u; cat /proc/self/uid_map /proc/self/gid_map; grep CapEff /proc/self/status']), { cwd: '/tmp' })
    const uid = userInfo(ROOTLESS_USER)!.uid
    const gid = userInfo(ROOTLESS_USER)!.gid
    const lines = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '))
    expect(lines).toEqual([
      '0',
      `0 ${uid} 1`, `1 ${ROOTLESS_SUBIDS.first} ${ROOTLESS_SUBIDS.count}`,
      `0 ${gid} 1`, `1 ${ROOTLESS_SUBIDS.first} ${ROOTLESS_SUBIDS.count}`,
      expect.stringMatching(/^CapEff: 0*1ffffffffff$/),
    ])
  })

  it('the user without a range gets no namespace from the harness, and says why', async () => {
    const r = await runAsUser(NORANGE_USER, inUserNamespaceArgv(['true']), { cwd: '/tmp', allowFailure: true })
    expect(r.exitCode).toBe(125)
    expect(r.stderr).toContain(`${NORANGE_USER} has no subordinate range`)
  })
})
