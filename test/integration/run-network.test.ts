/**
 * RUN's network, in real containers and real network namespaces: the default private namespace
 * (slirp4netns, host loopback unreachable, outbound reachable, DNS rewritten), `none`, `host`, and
 * that no slirp4netns helper outlives a step that ends, aborts or whose process is killed.
 * Tiny HTTP servers on the host stand in for a private service (on 127.0.0.1) and for the internet
 * (on the host's first global IPv4 address; this machine is offline).
 */
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { lookup } from 'node:dns/promises'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runExecutor } from '../../src/ops/run.js'
import { SLIRP_DNS } from '../../src/runtime/network.js'
import type { Vertex } from '../../src/graph/node.js'
import type { RunSpec } from '../../src/graph/nodes/run-node.js'
import type { Digest } from '../../src/oci/media-types.js'
import { pendingCleanups, sweepDeadWorkDirs } from '../../src/runtime/cleanup.js'
import type { ExecContext, ImageState, ProgressEvent } from '../../src/solver/types.js'
import { Store } from '../../src/store/store.js'
import { image, ImagesmithError } from '../../src/index.js'
import { busyboxArchive, busyboxRootfsTar, cleanupTmpDirs, debianRootfsTar, mountsUnder, tmpDir } from '../helpers/testbed.js'
import { sleepersUnder } from '../helpers/processes.js'
import { baseFromTar, stepContext, stepScriptPrelude } from '../helpers/run-step.js'
import { inUserNamespace } from '../helpers/rootless-env.js'

let root: string
let store: Store
let busybox: ImageState
let events: ProgressEvent[] = []
const servers: Server[] = []
let loopbackPort = 0
let external = ''
let externalPort = 0
let vid = 0

function vertex(command: string, spec: Partial<RunSpec> = {}): Vertex<'run'> {
  return {
    id: `sha256:${(++vid).toString(16).padStart(64, 'a')}` as Digest,
    kind: 'run',
    spec: { command: [command], shellForm: true, network: 'default', mounts: [], ...spec },
    inputs: [],
    meta: { description: 'test' },
  }
}

const ctxOf = (over: Partial<ExecContext> = {}): ExecContext => stepContext(store, root, (e) => events.push(e), over)

async function run(state: ImageState, command: string, spec: Partial<RunSpec> = {}, ctx: Partial<ExecContext> = {}): Promise<string> {
  events = []
  await runExecutor.exec(vertex(command, spec), [state], ctxOf(ctx))
  return events.flatMap((e) => (e.type === 'log' && e.stream === 'stdout' ? [e.data.toString()] : [])).join('')
}

async function serve(host: string, body: string): Promise<number> {
  const server = createServer((_req, res) => res.end(body))
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return (server.address() as AddressInfo).port
}

/** The first global (non-loopback, non-link-local) IPv4 address of this host, as `ip -4 addr` lists it. */
function firstGlobalIPv4(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.')) return a.address
  }
  throw new Error('no global IPv4 address on this host')
}

/** One RUN that tries each target with busybox nc; which of them answered with their body. */
async function probe(spec: Partial<RunSpec> = {}, ctx: Partial<ExecContext> = {}): Promise<Record<string, boolean>> {
  const targets = { loopback: `127.0.0.1 ${loopbackPort}`, gateway: `10.0.2.2 ${loopbackPort}`, external: `${external} ${externalPort}` }
  const script = Object.entries(targets)
    .map(([name, t]) => `echo "== ${name}"; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${t} 2>&1`)
    .join('; ')
  const out = await run(busybox, `${script}; true`, spec, ctx)
  const result: Record<string, boolean> = {}
  for (const name of Object.keys(targets)) {
    const section = out.split(`== ${name}\n`)[1]?.split('\n== ')[0] ?? ''
    result[name] = section.includes(name === 'external' ? 'external-ok' : 'loopback-secret')
  }
  return result
}

/** slirp4netns processes whose target is `holders` (or any, when undefined), alive (not zombies). */
function slirps(): { pid: number; ppid: number; target: string }[] {
  const out: { pid: number; ppid: number; target: string }[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((a) => a !== '')
      if (!/(^|\/)slirp4netns$/.test(argv[0] ?? '')) continue
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const [, state, ppid] = /\) (\S) (\d+)/.exec(stat) ?? []
      if (state === 'Z') continue
      out.push({ pid: Number(name), ppid: Number(ppid), target: argv.at(-2) ?? '' })
    } catch {
      // gone while we looked
    }
  }
  return out
}

const ours = () => slirps().filter((s) => s.ppid === process.pid)

/** Waits (up to 5 s) until these slirp4netns processes and their targets (the namespace holders) are gone. */
async function untilGone(seen: readonly { pid: number; target: string }[], label?: string): Promise<void> {
  const alive = () => {
    const now = new Set(slirps().map((s) => s.pid))
    // a holder counts while it lives and is not a zombie
    const live = (pid: string) => { try { return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) } catch { return false } }
    return seen.filter((s) => now.has(s.pid) || live(s.target))
  }
  for (let i = 0; i < 100 && alive().length > 0; i++) await new Promise((r) => setTimeout(r, 50))
  expect(alive(), label).toEqual([])
}

beforeAll(async () => {
  root = await tmpDir('ism-net-')
  store = new Store(join(root, 'store'))
  await store.blobs.init()
  busybox = await baseFromTar(store, busyboxRootfsTar())
  external = firstGlobalIPv4()
  loopbackPort = await serve('127.0.0.1', 'loopback-secret\n')
  externalPort = await serve(external, 'external-ok\n')
})

afterAll(async () => {
  for (const s of servers) s.close()
  await cleanupTmpDirs()
})

describe('default network: a private namespace through slirp4netns', () => {
  it("reaches the host's non-loopback address but not its loopback (neither as 127.0.0.1 nor as 10.0.2.2)", async () => {
    expect(await probe()).toEqual({ loopback: false, gateway: false, external: true })
    expect(pendingCleanups()).toEqual([])
    await untilGone(ours().map((s) => ({ pid: s.pid, target: s.target })))
    expect(ours()).toEqual([])
  })

  it('has its own interfaces (lo and tap0) and a non-loopback nameserver', async () => {
    const out = await run(busybox, 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " | sort; grep ^nameserver /etc/resolv.conf; hostname; grep localhost /etc/hosts')
    const lines = out.trim().split('\n')
    expect(lines.slice(0, 2)).toEqual(['lo', 'tap0'])
    const servers = lines.filter((l) => l.startsWith('nameserver')).map((l) => l.split(/\s+/)[1]!)
    expect(servers.length).toBeGreaterThan(0)
    for (const s of servers) expect(s).not.toMatch(/^127\.|:/)
    expect(lines).toContain('imagesmith')
    expect(lines).toContain('127.0.0.1\tlocalhost imagesmith')
  })

  it("resolves names through the container's resolv.conf and through slirp4netns's forwarder 10.0.2.3", async (t) => {
    const name = 'deb.debian.org'
    const hostAnswer = await lookup(name, { family: 4 }).then((r) => r.address, () => undefined)
    if (!hostAnswer) t.skip() // this host resolves no names: nothing to compare with
    const out = await run(busybox, `nslookup ${name} | grep -A9 ^Name; echo ==; nslookup ${name} ${SLIRP_DNS} | grep -A9 ^Name`)
    const [viaResolvConf, viaForwarder] = out.split('==\n')
    expect(viaResolvConf).toContain(hostAnswer)
    expect(viaForwarder).toContain(hostAnswer)
  })

  // The stand-in resolver binds port 53 on the host's network, which a user namespace's root may not.
  it.skipIf(inUserNamespace())("a host resolv.conf naming systemd-resolved's 127.0.0.53 becomes 10.0.2.3 inside, and names still resolve", async () => {
    // The build runs in a private mount namespace whose /etc/resolv.conf names only 127.0.0.53.
    const fake = join(root, 'resolv-loopback.conf')
    writeFileSync(fake, 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n')
    const script = join(root, 'resolv.mts')
    writeFileSync(
      script,
      `${stepScriptPrelude(store.root, busybox.layers)}await runExecutor.exec({ id: 'sha256:${'d'.repeat(64)}', kind: 'run', spec: { command: ['cat /etc/resolv.conf; echo ==; nslookup deb.debian.org | grep -A9 ^Name || echo unresolved'], shellForm: true, network: 'default', mounts: [] }, inputs: [], meta: { description: '' } }, [state], ctx)
`,
    )
    const hostAnswer = await lookup('deb.debian.org', { family: 4 }).then((r) => r.address, () => undefined)
    // A stand-in for systemd-resolved on 127.0.0.53: relays queries to the host's real resolver.
    const upstream = /^nameserver\s+(\S+)/m.exec(readFileSync('/etc/resolv.conf', 'utf8'))?.[1]
    const relay = createSocket('udp4')
    relay.on('message', (msg, from) => {
      const out = createSocket('udp4')
      out.on('message', (answer) => { relay.send(answer, from.port, from.address); out.close() })
      out.on('error', () => out.close())
      out.send(msg, 53, upstream ?? '127.0.0.1')
      setTimeout(() => { try { out.close() } catch { /* closed */ } }, 5000)
    })
    await new Promise<void>((resolve) => relay.bind(53, '127.0.0.53', resolve))
    const tsx = join(process.cwd(), 'node_modules/.bin/tsx')
    const r = await inMountNs('mount --bind "$1" /etc/resolv.conf && exec "$2" "$3"', [fake, tsx, script])
    relay.close()
    expect(r.status, r.stderr).toBe(0)
    const [resolv, answer] = r.stdout.split('==\n')
    expect(resolv).toBe('options edns0 trust-ad\nsearch .\nnameserver 10.0.2.3\n')
    // slirp4netns's forwarder asks the host's resolver on its loopback, which the step itself cannot reach
    if (hostAnswer) expect(answer).toContain(hostAnswer)
  }, 60_000)

  it("network: 'none' reaches neither server", async () => {
    expect(await probe({ network: 'none' })).toEqual({ loopback: false, gateway: false, external: false })
    expect(await probe({}, { network: 'none' })).toEqual({ loopback: false, gateway: false, external: false })
  })

  it("network: 'host' with the network.host entitlement shares the host's namespace: the loopback server answers", async () => {
    expect(await probe({ network: 'host' }, { allow: ['network.host'] })).toEqual({ loopback: true, gateway: false, external: true })
  })

  it("without the entitlement a build with a network: 'host' step fails before any step runs, naming network.host", async () => {
    const logs: string[] = []
    const b = image().from(`oci-archive:${busyboxArchive()}`).run('echo first-step-ran').run(`printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 ${loopbackPort}`, { network: 'host' })
    const err = await b.build({ cacheDir: join(root, 'cache'), noCache: true, onProgress: (e) => { if (e.type === 'log') logs.push(e.data.toString()) } }).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(ImagesmithError)
    expect(err).toMatchObject({ code: 'ENTITLEMENT_REQUIRED', details: { entitlement: 'network.host' } })
    expect((err as Error).message).toContain('network.host')
    expect(logs.join('')).not.toContain('first-step-ran')
    const ok = await b.build({ cacheDir: join(root, 'cache'), allow: ['network.host'], onProgress: (e) => { if (e.type === 'log') logs.push(e.data.toString()) } })
    expect(ok.layers.length).toBeGreaterThan(0)
    expect(logs.join('')).toContain('loopback-secret')
  }, 60_000)

  it('apt-get and useradd work on the Debian base in a default RUN', async () => {
    const debian = await baseFromTar(store, debianRootfsTar())
    const out = await run(debian, 'apt-get --version | head -1 && useradd -r app && id app')
    expect(out).toMatch(/^apt \d/)
    expect(out).toContain('uid=')
    await untilGone(ours())
  }, 60_000)
})

describe('no slirp4netns on the host', () => {
  it("fails a default RUN with NETWORK_TOOL_NOT_FOUND naming the package before its command runs; network 'none' still runs", async () => {
    const script = join(root, 'no-slirp.mts')
    writeFileSync(
      script,
      `${stepScriptPrelude(store.root, busybox.layers)}const step = (c, network) => runExecutor.exec({ id: 'sha256:' + c.repeat(64), kind: 'run', spec: { command: ['echo command-ran-' + network], shellForm: true, network, mounts: [] }, inputs: [], meta: { description: '' } }, [state], ctx)
  .then(() => console.log('ok'), (e) => console.log(JSON.stringify({ code: e.code, details: e.details, message: e.message })))
await step('1', 'default')
await step('2', 'none')
`,
    )
    // In a private mount namespace every slirp4netns binary is hidden under /dev/null (not a file, so not a program).
    const hide = 'for p in /usr/bin/slirp4netns /bin/slirp4netns /usr/local/bin/slirp4netns /usr/sbin/slirp4netns; do [ -e "$p" ] && mount --bind /dev/null "$p"; done; exec "$1" "$2"'
    const { status, stdout, stderr } = await inMountNs(hide, [join(process.cwd(), 'node_modules/.bin/tsx'), script])
    expect(status, stderr).toBe(0)
    const lines = stdout.trim().split('\n')
    const err = JSON.parse(lines[0]!) as { code: string; details: Record<string, unknown>; message: string }
    expect(err).toMatchObject({ code: 'NETWORK_TOOL_NOT_FOUND', details: { tool: 'slirp4netns', package: 'slirp4netns' } })
    expect(err.message).toContain('apt-get install slirp4netns')
    expect(stdout).not.toContain('command-ran-default')
    expect(lines.slice(1)).toEqual(['command-ran-none', 'ok'])
  }, 60_000)
})

describe('no network helper outlives its step', () => {
  it('an aborted RUN kills slirp4netns and the namespace holder', async () => {
    const ac = new AbortController()
    const p = run(busybox, 'echo ready; sleep 30', {}, { signal: ac.signal })
    let seen: ReturnType<typeof slirps> = []
    for (let i = 0; i < 200 && !events.some((e) => e.type === 'log' && e.data.toString().includes('ready')); i++) await new Promise((r) => setTimeout(r, 25))
    seen = ours()
    expect(seen.length).toBe(1)
    ac.abort()
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' })
    // killed with SIGKILL; the kernel takes a moment to tear their network devices down
    await untilGone(seen)
    expect(sleepersUnder(store.root, '30')).toEqual([])
    expect(mountsUnder(store.root)).toEqual([])
    expect(pendingCleanups()).toEqual([])
  })

  it('a build killed with SIGTERM mid-RUN leaves no slirp4netns behind', async () => {
    const script = join(root, 'kill-me.mts')
    writeFileSync(
      script,
      `${stepScriptPrelude(store.root, busybox.layers)}await runExecutor.exec({ id: 'sha256:${'f'.repeat(64)}', kind: 'run', spec: { command: ['echo ready; sleep 30'], shellForm: true, network: 'default', mounts: [] }, inputs: [], meta: { description: '' } }, [state], ctx)
`,
    )
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const child = spawn(join(process.cwd(), 'node_modules/.bin/tsx'), [script], { stdio: ['ignore', 'pipe', 'inherit'] })
      await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()))
      // tsx runs the script in a child node process: slirp4netns's parent is that one
      const descendants = (pid: number): number[] => {
        const kids = slirpsAndParents().filter((p) => p.ppid === pid).map((p) => p.pid)
        return [...kids, ...kids.flatMap(descendants)]
      }
      const tree = new Set([child.pid!, ...descendants(child.pid!)])
      const seen = slirps().filter((s) => tree.has(s.ppid))
      expect(seen.length, signal).toBe(1)
      // SIGKILL of the node processes: no cleanup code runs; the helpers see their pipes close
      if (signal === 'SIGKILL') {
        for (const pid of tree) if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node') process.kill(pid, 'SIGKILL')
      } else child.kill(signal)
      await new Promise((r) => child.on('close', r))
      await untilGone(seen, signal)
    }
    // what a SIGKILL leaves by design (the container, its mounts) goes as the next build would sweep it
    for (let i = 0; i < 100 && sleepersUnder(store.root, '30').length > 0; i++) {
      for (const pid of sleepersUnder(store.root, '30')) process.kill(pid, 'SIGKILL')
      await new Promise((r) => setTimeout(r, 50))
    }
    for (let i = 0; i < 40 && mountsUnder(store.root).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100))
      sweepDeadWorkDirs(store.workDir())
    }
    expect(mountsUnder(store.root)).toEqual([])
  }, 60_000)
})

/** Runs `sh -c setup sh ...args` in a private mount namespace (unshare -m); its exit status and output. */
async function inMountNs(setup: string, args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', setup, 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { status, stdout, stderr }
}

/** Every process with its parent (for finding a child's descendants). */
function slirpsAndParents(): { pid: number; ppid: number }[] {
  const out: { pid: number; ppid: number }[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const ppid = /\) \S (\d+)/.exec(readFileSync(`/proc/${name}/stat`, 'utf8'))?.[1]
      out.push({ pid: Number(name), ppid: Number(ppid) })
    } catch {
      // gone
    }
  }
  return out
}
