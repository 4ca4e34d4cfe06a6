/**
 * A rootless build whose host lacks a prerequisite fails with a typed error naming the fix, and
 * without a subordinate range still builds what needs no other ids (a single-id mapping, as rootless
 * podman and buildah do). The user `imagesmith-norange` has no range; missing `uidmap` is shown to
 * one build by hiding newuidmap/newgidmap in a mount namespace of its own (the host keeps them).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  fixtureBed,
  fixtureBuildArgv, NORANGE_USER, parseOutcome, requireRootlessBed, ROOTLESS_USER,
  runFixture, userArgv, userTmpDir, type FixtureOutcome,
} from '../helpers/rootless.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool, toolPath } from '../helpers/tools.js'

const bed = requireRootlessBed()
const tools = requireTools(['runc', 'newuidmap', 'newgidmap', 'unshare'])

describe.skipIf(bed.skip || tools.skip)('rootless prerequisites: errors that name the fix', () => {
  let copy: string
  let busybox: string
  let context: string
  let norange: string
  let rootless: string

  beforeAll(async () => {
    ;({ copy, busybox, context } = await fixtureBed())
    norange = await userTmpDir(NORANGE_USER)
    rootless = await userTmpDir(ROOTLESS_USER)
  })

  afterAll(async () => {
    await cleanupTmpDirs()
  })

  const why = (o: FixtureOutcome): string => `${o.ok ? o.digest : `${o.name} [${o.code}] ${o.message}`}\n${o.output.slice(-2000)}\n${o.stderr.slice(-2000)}`

  it('no subordinate range: a build needing only id 0 builds (single-id mapping), with the digest root gets', async () => {
    const job = (dir: string) => ({ case: 'rootOnly', busybox, context, cacheDir: join(dir, 'store'), dest: join(dir, 'root-only.tar') })
    const asUser = await runFixture(NORANGE_USER, copy, job(norange))
    expect(asUser.ok, why(asUser)).toBe(true)
    const asRoot = await runFixture(undefined, copy, job(await tmpDir('ism-rl-root-')))
    expect(asRoot.ok, why(asRoot)).toBe(true)
    expect(asUser.digest).toBe(asRoot.digest)
  })

  it('no subordinate range: a base whose files belong to 1000 fails before any step runs, naming usermod --add-subuids', async () => {
    const o = await runFixture(NORANGE_USER, copy, { case: 'sleeper', busybox, context, cacheDir: join(norange, 'store') })
    expect(o.ok).toBe(false)
    expect(o.code, why(o)).toMatch(/^ROOTLESS_/)
    expect(o.message).toContain('usermod --add-subuids')
    expect(o.output).not.toContain('started')
  })

  it('uidmap not installed: the build fails before any step runs, naming apt-get install uidmap', async () => {
    // newuidmap and newgidmap replaced, for this build only, by an empty non-executable file.
    const hideDir = await tmpDir('ism-rl-hide-')
    const empty = join(hideDir, 'absent')
    writeFileSync(empty, '', { mode: 0o644 })
    const hide = [toolPath('newuidmap')!, toolPath('newgidmap')!]
    const job = { case: 'sleeper', busybox, context, cacheDir: join(rootless, 'store') }
    const r = await runTool('unshare', [
      '--mount', '--propagation', 'private', '--', 'sh', '-c',
      'mount --bind "$1" "$2" && mount --bind "$1" "$3" && shift 3 && exec "$@"', 'sh', empty, hide[0]!, hide[1]!,
      'runuser', ...userArgv(ROOTLESS_USER, fixtureBuildArgv(copy, job), {}),
    ], { cwd: copy, allowFailure: true, timeoutMs: 120_000 })
    const o = parseOutcome(r.stdout, r.stderr)
    expect(o.ok).toBe(false)
    expect(o.code, why(o)).toBe('ROOTLESS_TOOL_NOT_FOUND')
    expect(o.message).toContain('apt-get install uidmap')
    expect(o.output).not.toContain('started')
  })
})
