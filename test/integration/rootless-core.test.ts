/**
 * Rootless builds driven through the test users (as root, with runuser): what the kernel refuses a
 * user namespace (mknod of a real device) and what it allows (fifos, whiteouts), the entitlement
 * for the host network, the default user-mode network, single-id builds for a user without a
 * subordinate range (and the typed errors where they cannot work), the worker dying with its
 * parent, and cache prune of snapshots owned by subordinate ids.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isProcessAlive } from '../../src/util/process.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { descendants, NORANGE_USER, nodeTsArgv, readableCheckout, readableTestbed, requireRootlessBed, ROOTLESS_USER, runAsUser, spawnAsUser, userInfo } from '../helpers/rootless.js'

const bed = requireRootlessBed()

interface Outcome {
  readonly ok: boolean
  readonly digest?: string
  readonly code?: string
  readonly name?: string
  readonly message?: string
  readonly details?: Record<string, unknown>
  readonly runsStarted?: number
  readonly output: string
}

let copy: string
let work: string
let script: string
let busybox: string
let rootOnly: string
let context: string

/** The build script both root and the users run: one case per name, result as the last line. */
function scriptText(index: string): string {
  return `import { image } from ${JSON.stringify(index)}
const [name, cacheDir, busybox, rootOnly, context] = process.argv.slice(2)
const base = (ref) => image().from(ref)
const cases = {
  // ownership outside the user's id, setuid, hard links, fifos, whiteouts, an opaque dir, USER by name, both networks
  digest: () => base(busybox)
    .copy('f.txt', '/f.txt', { chown: '1000:1000', chmod: '0640' })
    .run('mkdir /t && touch /t/a && echo x > /h && ln /h /h2 && chmod 4755 /h && mkfifo -m 0600 /fifo && chown 1000:65534 /t/a /fifo && rm /bin/vi', { network: 'none' })
    .run('rm -rf /t && mkdir /t && touch /t/c && ip -o -4 addr show tap0 | grep -c 10.0.2.100 > /t/net')
    .user('app').run('touch /tmp/by-app && id -u > /tmp/uid'),
  mknod: () => base(busybox).run('mkfifo /p && mknod /null2 c 1 3', { network: 'none' }),
  hostNet: () => base(busybox).run('true', { network: 'host' }),
  single: () => base(rootOnly).run('echo hi > /x && mkfifo /p && rm /bin/vi && ln /x /x2 && stat -c \\'%u:%g %a %h %n\\' /x /bin/sh > /listing', { network: 'none' }),
  singleUser: () => base(rootOnly).user('1000').run('id', { network: 'none' }),
  singleChown: () => base(rootOnly).run('mkdir /data && chown 1000 /data', { network: 'none' }),
  singleBusybox: () => base(busybox).run('true', { network: 'none' }),
  sleeper: () => base(busybox).run('echo started; sleep 300', { network: 'none' }),
}
let runsStarted = 0
let output = ''
try {
  const r = await cases[name]().build({ context, cacheDir, onProgress: (e) => {
    if (e.type === 'start' && e.description.startsWith('RUN')) runsStarted++
    if (e.type === 'log') { output += e.data.toString(); process.stdout.write(e.data) }
  } })
  process.stdout.write('\\nRESULT ' + JSON.stringify({ ok: true, digest: r.digest, runsStarted, output }) + '\\n')
} catch (e) {
  process.stdout.write('\\nRESULT ' + JSON.stringify({ ok: false, name: e.name, code: e.code, message: e.message, details: e.details, runsStarted, output: output || e.outputTail || '' }) + '\\n')
}
`
}

/** An OCI layout (tag latest) of one uncompressed layer: the rootfs tar's tree, every entry owned by 0:0. */
function rootOwnedLayout(rootfsTar: string, dir: string): string {
  const tree = `${dir}-tree`
  mkdirSync(tree)
  execFileSync('tar', ['-xf', rootfsTar, '-C', tree])
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true })
  const layerTmp = join(dir, 'layer.tar')
  execFileSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '--sort=name', '-cf', layerTmp, '-C', tree, '.'])
  const put = (data: Buffer) => {
    const hex = createHash('sha256').update(data).digest('hex')
    writeFileSync(join(dir, 'blobs', 'sha256', hex), data)
    return { digest: `sha256:${hex}`, size: data.length }
  }
  const layer = put(readFileSync(layerTmp))
  rmSync(layerTmp)
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [layer.digest] }, history: [{ created_by: 'root-owned busybox' }] })))
  const manifest = put(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  })))
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }))
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  execFileSync('chmod', ['-R', 'a+rX', dir])
  return `oci:${dir}:latest`
}

/** Solves in the worker with the build's lease begun, then prints which layer blobs that lease holds. */
function leaseScriptText(src: string): string {
  const m = (p: string) => JSON.stringify(join(src, p))
  return `import { image } from ${m('index.ts')}
import { Store } from ${m('store/store.ts')}
import { baseResolver } from ${m('sources/base.ts')}
import { rootlessPlan } from ${m('rootless/prerequisites.ts')}
import { solveInNamespace } from ${m('rootless/solve-in-namespace.ts')}
import { executors } from ${m('ops/table.ts')}
import { liveLeases } from ${m('store/lease.ts')}
const [cacheDir, busybox, context] = process.argv.slice(2)
const store = new Store(cacheDir)
await store.init()
await store.lease.begin()
const platform = { os: 'linux', architecture: 'amd64' }
const graph = image().from(busybox).run('echo held > /held', { network: 'none' }).graph()
const r = await solveInNamespace(rootlessPlan({ needsOtherIds: false }), graph, executors, {
  store, contextDir: context, epoch: 0, clampRunMtimes: false, created: '2024-01-01T00:00:00Z', platform, noCache: true,
  compression: 'gzip', secrets: {}, network: 'none', resolveBase: baseResolver({ store, platform }), emit: () => undefined,
}, {})
const leases = await liveLeases(store.layout)
process.stdout.write('RESULT ' + JSON.stringify({ ok: true, layers: r.state.layers.map((l) => l.digest), leases }) + '\\n')
`
}

function parse(stdout: string): Outcome {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith('RESULT '))
  if (!line) throw new Error(`no result line in:\n${stdout}`)
  return JSON.parse(line.slice(7)) as Outcome
}

/** A store dir the user owns. */
function storeFor(user: string, name: string): string {
  const dir = join(work, `${name}-${user}`)
  mkdirSync(dir)
  const u = userInfo(user)!
  chownSync(dir, u.uid, u.gid)
  return dir
}

async function buildAs(user: string | 'root', name: string, cacheDir: string): Promise<Outcome> {
  const args = [name, cacheDir, busybox, rootOnly, context]
  const argv = nodeTsArgv(copy, script, args)
  if (user === 'root') {
    const out = execFileSync(argv[0]!, argv.slice(1), { env: { ...process.env, SOURCE_DATE_EPOCH: '' }, encoding: 'utf8', maxBuffer: 64 << 20 })
    return parse(out)
  }
  const r = await runAsUser(user, argv, { allowFailure: true, timeoutMs: 240_000 })
  if (r.exitCode !== 0) throw new Error(`build as ${user} exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`)
  return parse(r.stdout)
}

beforeAll(async () => {
  if (bed.skip) return
  copy = await readableCheckout()
  const testbed = await readableTestbed()
  busybox = join(testbed, 'busybox.tar')
  work = await tmpDir('rootless-core-')
  chmodSync(work, 0o755)
  script = join(work, 'build.mts')
  writeFileSync(script, scriptText(join(copy, 'src', 'index.ts')))
  context = join(work, 'ctx')
  mkdirSync(context)
  writeFileSync(join(context, 'f.txt'), 'from the context\n')
  // A base whose files all belong to root: what a user without subordinate ids can unpack.
  rootOnly = rootOwnedLayout(join(testbed, 'busybox-rootfs.tar'), join(work, 'root-only'))
  busybox = `oci-archive:${busybox}`
}, 300_000)

afterAll(cleanupTmpDirs)

describe.skipIf(bed.skip)('rootless builds through the namespace worker', () => {
  it('the same image digest as root: owners 1000/65534 recorded in-container, setuid, hard link, fifo, whiteout, opaque dir, USER by name, user-mode network', async () => {
    const userStore = storeFor(ROOTLESS_USER, 'digest')
    const [asRoot, asUser] = await Promise.all([buildAs('root', 'digest', join(work, 'digest-root')), buildAs(ROOTLESS_USER, 'digest', userStore)])
    expect(asRoot.ok, asRoot.message).toBe(true)
    expect(asUser.ok, asUser.message).toBe(true)
    expect(asUser.digest).toBe(asRoot.digest)
    // Nothing left in the work dir: step dirs, and runc's state (kept in each step's dir, never /run/runc).
    expect(readdirSync(join(userStore, 'work'))).toEqual([])
  }, 300_000)

  it("the build's own lease holds the layers the worker made before the worker drops its lease", async () => {
    const leaseScript = join(work, 'lease.mts')
    writeFileSync(leaseScript, leaseScriptText(join(copy, 'src')))
    const r = await runAsUser(ROOTLESS_USER, nodeTsArgv(copy, leaseScript, [storeFor(ROOTLESS_USER, 'lease'), busybox, context]), { allowFailure: true })
    expect(r.exitCode, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('RESULT '))!.slice(7)) as { layers: string[]; leases: { pid: number; blobs: string[] }[] }
    // One lease left, the caller's (the worker's is gone), and it holds every layer of the result.
    expect(out.leases).toHaveLength(1)
    expect(out.leases[0]!.blobs).toEqual(expect.arrayContaining(out.layers))
  }, 120_000)

  it('mknod of a real device fails with EPERM as in rootless podman (a fifo in the same step works)', async () => {
    const r = await buildAs(ROOTLESS_USER, 'mknod', storeFor(ROOTLESS_USER, 'mknod'))
    expect(r.ok).toBe(false)
    expect(r.code).toBe('RUN_FAILED')
    expect(r.output).toMatch(/mknod: \/null2: Operation not permitted/)
    const asRoot = await buildAs('root', 'mknod', join(work, 'mknod-root'))
    expect(asRoot.ok, asRoot.message).toBe(true)
  }, 120_000)

  it("network: 'host' stays an entitlement for a plain user", async () => {
    const r = await buildAs(ROOTLESS_USER, 'hostNet', storeFor(ROOTLESS_USER, 'hostnet'))
    expect(r).toMatchObject({ ok: false, code: 'ENTITLEMENT_REQUIRED', runsStarted: 0 })
  }, 60_000)

  it('no subordinate range: a single-id build of a root-owned base works and equals the root build', async () => {
    const [asRoot, asUser] = await Promise.all([buildAs('root', 'single', join(work, 'single-root')), buildAs(NORANGE_USER, 'single', storeFor(NORANGE_USER, 'single'))])
    expect(asUser.ok, asUser.message).toBe(true)
    expect(asUser.digest).toBe(asRoot.digest)
  }, 120_000)

  it('no subordinate range: USER 1000 fails before any step, naming the usermod fix', async () => {
    const r = await buildAs(NORANGE_USER, 'singleUser', storeFor(NORANGE_USER, 'user'))
    expect(r).toMatchObject({ ok: false, code: 'ROOTLESS_NO_SUBIDS', runsStarted: 0, details: { user: NORANGE_USER } })
    expect(r.message).toContain(`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${NORANGE_USER}`)
  }, 60_000)

  it('no subordinate range: a RUN that chowns to 1000 fails as RUN_FAILED with the kernel\'s EINVAL and the usermod fix', async () => {
    const r = await buildAs(NORANGE_USER, 'singleChown', storeFor(NORANGE_USER, 'chown'))
    expect(r).toMatchObject({ ok: false, code: 'RUN_FAILED', runsStarted: 1 })
    expect(r.message).toMatch(/Invalid argument/)
    expect(r.message).toContain(`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${NORANGE_USER}`)
    expect(r.details).toMatchObject({ exitCode: 1, hint: expect.stringContaining('no subordinate ids') })
  }, 60_000)

  it('no subordinate range: a base layer owned by uid 1000 fails naming the id, the path and the fix', async () => {
    const r = await buildAs(NORANGE_USER, 'singleBusybox', storeFor(NORANGE_USER, 'busybox'))
    expect(r).toMatchObject({ ok: false, code: 'ROOTLESS_ID_UNMAPPED', details: { id: 1000, kind: 'uid', path: '/home/app' } })
    expect(r.message).toContain('usermod --add-subuids')
  }, 60_000)

  it('the worker and its container die with a killed build, and the container with a killed worker; cache ls sizes and cache prune removes the sub-id owned snapshots, through the worker', async () => {
    const cacheDir = storeFor(ROOTLESS_USER, 'kill')
    const child = spawnAsUser(ROOTLESS_USER, nodeTsArgv(copy, script, ['sleeper', cacheDir, busybox, rootOnly, context]))
    const closed = new Promise((r) => child.once('close', r))
    let out = ''
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    const deadline = Date.now() + 120_000
    while (!out.includes('started') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(out).toContain('started')
    const helpers = descendants(child.pid!)
    const names = helpers.map((p) => { try { return execFileSync('cat', [`/proc/${p}/comm`], { encoding: 'utf8' }).trim() } catch { return '' } })
    expect(names).toEqual(expect.arrayContaining(['node', 'node', 'runc', 'sleep'])) // the worker is the node that unshare became
    // The build process itself (runuser's child), killed outright: no cleanup code of its own runs.
    const build = helpers[0]!
    process.kill(build, 'SIGKILL')
    const alive = () => helpers.filter(isProcessAlive) // zombies count as gone
    const until = Date.now() + 15_000
    while (alive().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
    expect(alive()).toEqual([])
    await closed

    // Now the worker itself, SIGKILLed mid-RUN (no cleanup code runs in it): its watchdog takes the container down.
    const child2 = spawnAsUser(ROOTLESS_USER, nodeTsArgv(copy, script, ['sleeper', cacheDir, busybox, rootOnly, context]))
    const closed2 = new Promise((r) => child2.once('close', r))
    let out2 = ''
    child2.stdout!.on('data', (d: Buffer) => (out2 += d.toString()))
    while (!out2.includes('started') && Date.now() < deadline + 120_000) await new Promise((r) => setTimeout(r, 50))
    const helpers2 = descendants(child2.pid!)
    const worker = helpers2.find((p) => { try { return execFileSync('cat', [`/proc/${p}/cmdline`], { encoding: 'utf8' }).includes('worker') } catch { return false } })
    expect(worker).toBeDefined()
    const watched = descendants(worker!)
    expect(watched.length).toBeGreaterThan(0)
    process.kill(worker!, 'SIGKILL')
    const gone = () => watched.filter(isProcessAlive)
    const until2 = Date.now() + 15_000
    while (gone().length > 0 && Date.now() < until2) await new Promise((r) => setTimeout(r, 100))
    expect(gone()).toEqual([])
    await closed2
    expect(out2).toContain('ROOTLESS_WORKER_FAILED')

    // The snapshot holds files of sub-ids (uid 1000 in the image is 200999 on the host): the user cannot remove them itself.
    const snapshots = join(cacheDir, 'snapshots')
    expect(readdirSync(snapshots).length).toBeGreaterThan(0)
    expect(execFileSync('find', [snapshots, '-uid', '200999'], { encoding: 'utf8' })).toContain('home/app')
    // cache ls reads the snapshot through the worker too: a 0700 dir of a sub-id hides nothing from its size.
    const ls = await runAsUser(ROOTLESS_USER, [process.execPath, join(copy, 'bin', 'imagesmith.js'), 'cache', 'ls', '--format', 'json', '--cache-dir', cacheDir], { allowFailure: true })
    expect(ls.exitCode, ls.stderr).toBe(0)
    const listed = (JSON.parse(ls.stdout) as { kind: string; id: string; size: number }[]).filter((r) => r.kind === 'snapshot')
    expect(listed.length).toBeGreaterThan(0)
    for (const r of listed) {
      const sizes = execFileSync('find', [join(snapshots, r.id.slice(7)), '!', '-type', 'd', '-printf', '%s\\n'], { encoding: 'utf8' })
      expect(r.size).toBe(sizes.split('\n').filter(Boolean).reduce((n, x) => n + Number(x), 0))
    }
    const prune = await runAsUser(ROOTLESS_USER, [process.execPath, join(copy, 'bin', 'imagesmith.js'), 'cache', 'prune', '--all', '--cache-dir', cacheDir], { allowFailure: true })
    expect(prune.exitCode, prune.stderr).toBe(0)
    expect(prune.stdout).toContain('Deleted snapshot')
    expect(readdirSync(snapshots).filter((n) => !n.startsWith('.'))).toEqual([])
  }, 300_000)
})
