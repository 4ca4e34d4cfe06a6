/**
 * A rootless build killed in the middle of a RUN (SIGKILL of the build's Node process during
 * `RUN sleep 30`) leaves nothing behind: no process of its user namespaces (the worker, runc, the
 * container, the network helper), no mount namespace of its still held, no mounts on the host,
 * a store that verifies, and a next build on that store equal to a clean one.
 *
 * Only this build's processes are looked at: the tree under the killed process and whatever else
 * lives in the namespaces that tree made, never host-wide counts (other suites run meanwhile).
 */
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { descendants, procInfo, processesInNamespaces, stillAlive, type ProcInfo } from '../helpers/process-tree.js'
import {
  fixtureBed,
  fixtureBuildArgv, requireRootlessBed, ROOTLESS_USER, runFixture,
  spawnAsUser, userInfo, userTmpDir, type FixtureJob,
} from '../helpers/rootless.js'
import { storeProblems } from '../helpers/store-check.js'
import { cleanupTmpDirs, mountsUnder } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireRootlessBed()
const tools = requireTools(['runc', 'newuidmap', 'newgidmap'])

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(50)
  }
}

describe.skipIf(bed.skip || tools.skip)('a rootless build killed mid-RUN', () => {
  let copy: string
  let busybox: string
  let context: string
  let home: string

  beforeAll(async () => {
    ;({ copy, busybox, context } = await fixtureBed())
    home = await userTmpDir(ROOTLESS_USER)
  })

  afterAll(async () => {
    await cleanupTmpDirs()
  })

  it('leaves no processes, mounts or mount namespaces; the store verifies; the next build equals a clean one', async () => {
    const cacheHome = join(home, 'cache')
    const store = join(cacheHome, 'imagesmith') // the user's default store: $XDG_CACHE_HOME/imagesmith
    const job: FixtureJob = { case: 'sleeper', busybox, context }
    const env = { XDG_CACHE_HOME: cacheHome }
    const runuser = spawnAsUser(ROOTLESS_USER, fixtureBuildArgv(copy, job), { env, cwd: copy })
    let out = ''
    let err = ''
    runuser.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    runuser.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    const exited = new Promise<number | null>((resolve) => runuser.once('exit', (code) => resolve(code)))

    try {
      await until('the RUN to start ("started" on stdout)', () => out.includes('started') || runuser.exitCode !== null, 120_000)
      expect(out, `the build ended before its RUN started:\n${out}\n${err}`).toContain('started')

      // The build process is runuser's child: node running build.ts as the user, in the host's namespaces.
      const build = descendants(runuser.pid!).map(procInfo).find((p) => p?.argv.some((a) => a.endsWith('fixtures/rootless/build.ts')))
      expect(build, 'the build process under runuser').toBeDefined()
      expect(build!.uid).toBe(userInfo(ROOTLESS_USER)!.uid)
      const host = procInfo(process.pid)!
      expect(build!.userNs).toBe(host.userNs)

      // Everything the build started, the namespaces it made, and whatever else lives in them (a
      // container runc started detached is no descendant, but shares the worker's user namespace).
      const hostNs = new Set([host.userNs, host.mountNs])
      let tree: ProcInfo[] = []
      let namespaces = new Set<string>()
      await until('the container (sleep 30) in the build\'s namespaces', () => {
        const below = descendants(build!.pid).map(procInfo).filter((p): p is ProcInfo => p !== undefined)
        namespaces = new Set(below.flatMap((p) => [p.userNs, p.mountNs]).filter((ns) => !hostNs.has(ns)))
        const all = new Map([...below, ...processesInNamespaces(namespaces)].map((p) => [p.pid, p]))
        tree = [...all.values()]
        for (const p of tree) if (!hostNs.has(p.mountNs)) namespaces.add(p.mountNs)
        return tree.some((p) => p.argv.join(' ') === 'sleep 30')
      }, 10_000)
      expect([...namespaces].some((ns) => ns.startsWith('user:')), `a user namespace in the build tree: ${tree.map((p) => p.argv.join(' ')).join('\n')}`).toBe(true)
      expect([...namespaces].some((ns) => ns.startsWith('mnt:')), 'a private mount namespace in the build tree').toBe(true)

      process.kill(build!.pid, 'SIGKILL')
      expect(await exited).not.toBe(0)

      await until('every process of the killed build to go', () => tree.every((p) => !stillAlive(p)), 15_000)
      expect(tree.filter(stillAlive).map((p) => p.argv.join(' '))).toEqual([])
      expect(processesInNamespaces(namespaces).map((p) => `${p.pid} ${p.argv.join(' ')}`)).toEqual([])
      expect(mountsUnder(home)).toEqual([])
      expect(existsSync(store), `the store under the user's cache dir (${store})`).toBe(true)
      expect(storeProblems(store)).toEqual([])
    } finally {
      if (runuser.exitCode === null) runuser.kill('SIGKILL')
    }

    // The next build on the killed build's store, and a clean one on a fresh store, at once.
    const [next, clean] = await Promise.all([
      runFixture(ROOTLESS_USER, copy, job, env),
      runFixture(ROOTLESS_USER, copy, { ...job, cacheDir: join(home, 'clean-store') }, env),
    ])
    expect(next.ok, `${next.message}\n${next.output}\n${next.stderr}`).toBe(true)
    expect(clean.ok, `${clean.message}\n${clean.output}\n${clean.stderr}`).toBe(true)
    expect(next.digest).toBe(clean.digest)
    expect(next.layers).toEqual(clean.layers)
    expect(storeProblems(store)).toEqual([])
    expect(mountsUnder(home)).toEqual([])
    // the killed RUN's bundle (with runc's state: a rootless build keeps it there) was swept by the next build
    expect(existsSync(join(store, 'work')) ? readdirSync(join(store, 'work')) : []).toEqual([])
  }, 300_000)
})
