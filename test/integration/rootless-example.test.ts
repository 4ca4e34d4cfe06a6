/**
 * examples/rootless builds as its comment says, through the CLI, as the plain test user (so the
 * example never rots), and gives the image root gets from the same command; podman runs it.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readableCheckout, readableTestbed, requireRootlessBed, ROOTLESS_USER, runAsUser, userInfo, userTmpDir } from '../helpers/rootless.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { podmanCleanup, podmanStore, requireTools, runTool } from '../helpers/tools.js'

const bed = requireRootlessBed()
const tools = requireTools(['runc', 'podman', 'newuidmap', 'newgidmap'])

describe.skipIf(bed.skip || tools.skip)('examples/rootless', () => {
  let copy: string
  let base: string

  beforeAll(async () => {
    copy = await readableCheckout()
    base = `oci-archive:${join(await readableTestbed(), 'busybox.tar')}`
  })

  afterAll(async () => {
    await podmanCleanup()
    await cleanupTmpDirs()
  })

  /** `imagesmith build` of the example, as its comment gives it; the manifest digest of the archive. */
  async function buildExample(user: string | undefined, out: string): Promise<string> {
    const argv = [process.execPath, join(copy, 'bin', 'imagesmith.js'), 'build', 'examples/rootless/build.ts', '--context', 'examples/rootless',
      '-o', `type=oci,dest=${join(out, 'app.tar')}`, '-t', 'rootless-example:1', '--progress', 'plain']
    const env = { BASE_IMAGE: base, SOURCE_DATE_EPOCH: '' }
    const r = user === undefined
      ? await runTool(argv[0]!, argv.slice(1), { cwd: copy, env: { ...process.env, ...env, XDG_CACHE_HOME: join(out, 'cache') }, allowFailure: true })
      : await runAsUser(user, argv, { cwd: copy, env, allowFailure: true })
    expect(r.exitCode, `${user ?? 'root'}: ${r.stderr.slice(-4000)}`).toBe(0)
    const index = JSON.parse((await runTool('tar', ['-xOf', join(out, 'app.tar'), 'index.json'])).stdout) as { manifests: { digest: string }[] }
    return index.manifests[0]!.digest
  }

  it('a plain user builds it with the CLI, its own store under ~/.cache/imagesmith, the same image as root; podman runs it', async () => {
    const userOut = await userTmpDir(ROOTLESS_USER)
    const asUser = await buildExample(ROOTLESS_USER, userOut)
    const asRoot = await buildExample(undefined, await tmpDir('ism-rl-ex-'))
    expect(asUser).toBe(asRoot)
    const store = join(userInfo(ROOTLESS_USER)!.home, '.cache', 'imagesmith')
    expect(readdirSync(join(store, 'blobs', 'sha256')).map((b) => `sha256:${b}`)).toContain(asUser)

    const podman = await podmanStore()
    const loaded = await podman.load(join(userOut, 'app.tar'))
    const r = await podman.run(loaded.id)
    expect(r.stdout).toBe('built by svc (2000:2000)\ndrwxr-xr-x 2000 2000 app\ndrwxr-xr-x 2000 2000 data\n')
    expect(readFileSync(join(copy, 'examples', 'rootless', 'build.ts'), 'utf8')).toContain('imagesmith build examples/rootless/build.ts --context examples/rootless -o type=oci,dest=app.tar')
  }, 300_000)
})
