/**
 * Rootless builds give the root build's image, byte for byte: each fixture build script
 * (test/fixtures/rootless/builds.ts) runs once as root and once as the plain test user
 * `imagesmith-rootless`, from the same readable copy of the code, with the same context and
 * no SOURCE_DATE_EPOCH (builds are reproducible without it); the image digests (and so every layer) must be equal. The rootless result
 * also loads into podman and passes skopeo and oci-image-tool.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildCases } from '../fixtures/rootless/builds.js'
import {
  fixtureBed,
  requireRootlessBed, ROOTLESS_USER, runFixture, userTmpDir,
  type FixtureOutcome,
} from '../helpers/rootless.js'
import { storeProblems } from '../helpers/store-check.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { ociImageToolValidate, podmanCleanup, podmanStore, requireTools, skopeoInspect } from '../helpers/tools.js'

const bed = requireRootlessBed()
const tools = requireTools(['runc', 'podman', 'skopeo', 'oci-image-tool', 'newuidmap', 'newgidmap'])
const CASES = Object.keys(buildCases({ busybox: '' }))

describe.skipIf(bed.skip || tools.skip)('rootless builds equal root builds (no SOURCE_DATE_EPOCH)', () => {
  let copy: string
  let busybox: string
  let context: string
  let rootWork: string
  let userWork: string

  beforeAll(async () => {
    ;({ copy, busybox, context } = await fixtureBed())
    rootWork = await tmpDir('ism-rl-root-')
    userWork = await userTmpDir(ROOTLESS_USER)
  })

  afterAll(async () => {
    await podmanCleanup()
    await cleanupTmpDirs()
  })

  const explain = (who: string, o: FixtureOutcome): string =>
    `${who}: ${o.ok ? o.digest : `${o.name} [${o.code}] ${o.message}`}\n${o.output.slice(-3000)}\n${o.stderr.slice(-3000)}`

  it.each(CASES)('%s: same digest as root; the rootless archive loads into podman and validates', async (name) => {
    const job = (work: string) => ({ case: name, busybox, context, cacheDir: join(work, 'store'), dest: join(work, `${name}.tar`), tag: `imagesmith-test/rootless-${name}:1` })
    const asRoot = await runFixture(undefined, copy, job(rootWork))
    expect(asRoot.ok, explain('root', asRoot)).toBe(true)
    const asUser = await runFixture(ROOTLESS_USER, copy, job(userWork))
    expect(asUser.ok, explain(ROOTLESS_USER, asUser)).toBe(true)

    expect(asUser.layers).toEqual(asRoot.layers)
    expect(asUser.configDigest).toBe(asRoot.configDigest)
    expect(asUser.digest).toBe(asRoot.digest)

    const archive = job(userWork).dest
    expect((await ociImageToolValidate(archive, '1')).exitCode).toBe(0)
    expect((await skopeoInspect(`oci-archive:${archive}`, '1')).Layers).toEqual(asRoot.layers)
    const podman = await podmanStore()
    const loaded = await podman.load(archive)
    expect(`sha256:${loaded.id}`).toBe(asUser.configDigest)
    expect(storeProblems(join(userWork, 'store'))).toEqual([])
  }, 300_000)

  it('two builds of the user at once share one store: both finish with the digests root got, and the store verifies', async () => {
    const shared = join(userWork, 'shared-store')
    const job = (name: string) => ({ case: name, busybox, context, cacheDir: shared })
    const [a, b] = await Promise.all([runFixture(ROOTLESS_USER, copy, job('multi-stage')), runFixture(ROOTLESS_USER, copy, job('user-by-name'))])
    expect(a.ok, explain(ROOTLESS_USER, a)).toBe(true)
    expect(b.ok, explain(ROOTLESS_USER, b)).toBe(true)
    const asRoot = (name: string) => runFixture(undefined, copy, { ...job(name), cacheDir: join(rootWork, 'store') })
    const [ra, rb] = [await asRoot('multi-stage'), await asRoot('user-by-name')]
    expect([a.digest, b.digest]).toEqual([ra.digest, rb.digest])
    expect(storeProblems(shared)).toEqual([])
  }, 300_000)

  it('what the rootless image holds runs as expected in podman: owners, modes, special files, the users by name', async () => {
    const podman = await podmanStore()
    const files = await podman.load(join(userWork, 'files-owners-modes.tar'))
    const r = await podman.run(files.id, { args: ['sh', '-c', 'ls -ln /d | sort -k9 | while read m l u g rest; do echo "$m $u $g ${rest##* }"; done'] })
    expect(r.stdout.trim().split('\n')).toEqual(expect.arrayContaining([
      expect.stringMatching(/^-rw-r----- 1000 1000 f$/),
      expect.stringMatching(/^-rwsr-xr-x 0 0 suid$/),
      expect.stringMatching(/^prw--w---- 1000 1000 fifo$/),
      expect.stringMatching(/^drwxr-x--- 65534 65534 sub$/),
    ]))
    const users = await podman.load(join(userWork, 'user-by-name.tar'))
    const u = await podman.run(users.id, { args: ['sh', '-c', 'cat /home/app/uid /srv/id; ls -ln /srv/mine /tmp/by-app'] })
    expect(u.stdout).toMatch(/^1000\nuid=1500\(builder\) gid=1500\(builder\)[^\n]*\n-rw-r--r-- +1 1500 +1500 [^\n]*\/srv\/mine\n-rw-r--r-- +1 1000 +1000 [^\n]*\/tmp\/by-app\n$/)
  })
})
