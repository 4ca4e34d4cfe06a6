/**
 * RUN in real containers (runc/crun as found), at the executor level: the layer a step makes, its
 * whiteouts, what never leaks into it, the Dockerfile semantics of USER/WORKDIR/ENV/ARG/SHELL, the
 * mounts, the cache key, cancellation and cleanup. End-to-end builds are at the bottom.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import * as tar from 'tar'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ExecError } from '../../src/errors.js'
import { runExecutor } from '../../src/ops/run.js'
import type { Vertex } from '../../src/graph/node.js'
import type { MountSpec, RunSpec } from '../../src/graph/nodes/run-node.js'
import type { LayerEntry } from '../../src/layer/entry.js'
import { sortEntries, writeLayer } from '../../src/layer/write-layer.js'
import type { Digest } from '../../src/oci/media-types.js'
import type { ContainerConfig, LayerRef } from '../../src/oci/types.js'
import { pendingCleanups } from '../../src/runtime/cleanup.js'
import { setOverlaySupport } from '../../src/snapshot/overlay.js'
import { withRootfs } from '../../src/snapshot/rootfs.js'
import { ensureSnapshot } from '../../src/snapshot/unpack.js'
import type { ExecContext, ImageState, ProgressEvent } from '../../src/solver/types.js'
import { Store } from '../../src/store/store.js'
import { image } from '../../src/index.js'
import { busyboxArchive, busyboxRootfsTar, cleanupTmpDirs, debianArchive, debianRootfsTar, mountsUnder, tmpDir } from '../helpers/testbed.js'
import { podmanCleanup, podmanStore, requireTools } from '../helpers/tools.js'
import { sleepersUnder } from '../helpers/processes.js'
import { baseFromTar, stepContext, stepScriptPrelude } from '../helpers/run-step.js'
import { canBuildRootless, inUserNamespace } from '../helpers/rootless-env.js'

let root: string
let store: Store
let contextDir: string
let busybox: ImageState
let events: ProgressEvent[] = []

const T = 1_700_000_000
let vid = 0

const ctxOf = (over: Partial<ExecContext> = {}): ExecContext => stepContext(store, contextDir, (e) => events.push(e), over)

function vertex(command: string | readonly string[], spec: Partial<RunSpec> = {}): Vertex<'run'> {
  const shellForm = typeof command === 'string'
  return {
    id: `sha256:${(++vid).toString(16).padStart(64, '0')}` as Digest,
    kind: 'run',
    spec: { command: shellForm ? [command] : [...command], shellForm, network: 'default', mounts: [], ...spec },
    inputs: [],
    meta: { description: 'test' },
  }
}

function withConfig(state: ImageState, c: Partial<ContainerConfig>, args: ImageState['args'] = state.args): ImageState {
  return { ...state, config: { ...state.config, config: { ...state.config.config, ...c } }, args }
}

async function run(state: ImageState, command: string | readonly string[], spec: Partial<RunSpec> = {}, ctx: Partial<ExecContext> = {}, inputs: ImageState[] = []) {
  return runExecutor.exec(vertex(command, spec), [state, ...inputs], ctxOf(ctx))
}

function output(): string {
  return events.flatMap((e) => (e.type === 'log' && e.stream === 'stdout' ? [e.data.toString()] : [])).join('')
}

interface Listed { path: string; type: string; mode: number; uid: number; gid: number; size: number; mtime: number; linkpath?: string }

async function listLayer(layer: LayerRef): Promise<Listed[]> {
  const out: Listed[] = []
  await tar.t({
    file: store.blobs.blobPath(layer.digest),
    onReadEntry: (e) => {
      out.push({
        path: e.path.replace(/\/$/, ''),
        type: e.type,
        mode: (e.mode ?? 0) & 0o7777,
        uid: e.uid ?? -1,
        gid: e.gid ?? -1,
        size: e.size ?? 0,
        mtime: Math.floor((e.mtime?.getTime() ?? 0) / 1000),
        linkpath: e.linkpath || undefined,
      })
    },
  })
  return out
}

const paths = async (layer: LayerRef) => (await listLayer(layer)).map((e) => e.path)

const file = (path: string, data: string, extra: Partial<LayerEntry> = {}): LayerEntry =>
  ({ type: 'file', path, mode: 0o644, uid: 0, gid: 0, mtime: T, size: Buffer.byteLength(data), source: { data: Buffer.from(data) }, ...extra }) as LayerEntry
const dir = (path: string): LayerEntry => ({ type: 'dir', path, mode: 0o755, uid: 0, gid: 0, mtime: T })

async function addLayer(state: ImageState, entries: LayerEntry[]): Promise<ImageState> {
  const layer = await writeLayer(sortEntries(entries), store.blobs)
  return { ...state, layers: [...state.layers, layer], config: { ...state.config, rootfs: { type: 'layers', diff_ids: [...state.config.rootfs.diff_ids, layer.diffId] } } }
}

function expectClean(): void {
  expect(mountsUnder(store.root)).toEqual([])
  expect(existsSync(store.workDir()) ? readdirSync(store.workDir()) : []).toEqual([])
  expect(pendingCleanups()).toEqual([])
  // In a user namespace (the suites rerun as the test user) runc keeps its state in each step's dir,
  // checked gone just above; the host's /run/runc is root's and not ours to list.
  if (inUserNamespace()) return
  const containers = execFileSync('runc', ['list', '-q']).toString().split('\n').filter((l) => l.startsWith(`imagesmith-${process.pid}-`))
  expect(containers).toEqual([])
}

beforeAll(async () => {
  root = await tmpDir('ism-run-')
  store = new Store(join(root, 'store'))
  await store.blobs.init()
  contextDir = join(root, 'ctx')
  mkdirSync(join(contextDir, 'sub'), { recursive: true })
  writeFileSync(join(contextDir, 'sub', 'data.txt'), 'from context\n')
  busybox = await baseFromTar(store, busyboxRootfsTar())
})

afterEach(() => {
  events = []
})

afterAll(async () => {
  setOverlaySupport(store, undefined)
  await podmanCleanup()
  await cleanupTmpDirs()
})

/**
 * What a RUN on the busybox base (no /dev, /proc, /sys; an /etc without hosts or resolv.conf) keeps
 * of its container's mounts, as buildah 1.28 and docker 20.10's BuildKit both do: the mount points
 * of the runtime's own filesystems, and /etc, touched by making and removing the /etc/hosts and
 * /etc/resolv.conf mount points. Never anything under them, nor the file mount points themselves.
 */
const MOUNT_DIRS = ['dev', 'etc', 'proc', 'sys']
const NEVER_IN_A_LAYER = /^(proc|sys|dev)\/|^etc\/(resolv\.conf|hosts|hostname)$/

describe('the layer a RUN makes', () => {
  let parent: ImageState
  beforeAll(async () => {
    parent = await addLayer(busybox, [
      dir('keep'), file('keep/a', 'a1'), file('keep/b', 'b1'),
      file('gone', 'x'),
      dir('tree'), file('tree/old1', 'o1'), dir('tree/sub'), file('tree/sub/old2', 'o2'),
    ])
  })

  const script = [
    'echo changed > /keep/a',
    'echo new > /new',
    'rm /gone',
    'rm -rf /tree && mkdir /tree && echo fresh > /tree/fresh',
    'rm /bin/vi',
    'ln -s /keep/b /link',
    'mkdir -p /made/deep && echo d > /made/deep/f',
  ].join(' && ')

  const expected = [
    'bin', 'bin/.wh.vi',
    'keep', 'keep/a',
    'link',
    'made', 'made/deep', 'made/deep/f',
    'new',
    '.wh.gone',
    'tree', 'tree/.wh..wh..opq', 'tree/fresh',
    ...MOUNT_DIRS,
  ].sort()

  it('holds exactly the added, changed and deleted paths, as whiteouts and an opaque dir', async () => {
    const { state } = await run(parent, script)
    const layer = state.layers.at(-1)!
    const listed = await listLayer(layer)
    expect(listed.map((e) => e.path).sort()).toEqual(expected)
    expect(listed.find((e) => e.path === 'link')).toMatchObject({ type: 'SymbolicLink', linkpath: '/keep/b' })
    for (const e of listed) expect(e.path).not.toMatch(NEVER_IN_A_LAYER)

    // The merged result is the tree the script asked for.
    const tree = await withRootfs(store, state.layers, {}, async (d) => ({
      keep: readdirSync(join(d, 'keep')).sort(),
      a: readFileSync(join(d, 'keep/a'), 'utf8'),
      gone: existsSync(join(d, 'gone')),
      tree: readdirSync(join(d, 'tree')).sort(),
      vi: existsSync(join(d, 'bin/vi')),
      sh: existsSync(join(d, 'bin/sh')),
      top: readdirSync(d).sort(),
    }))
    expect(tree).toEqual({
      keep: ['a', 'b'],
      a: 'changed\n',
      gone: false,
      tree: ['fresh'],
      vi: false,
      sh: true,
      top: ['bin', 'dev', 'etc', 'home', 'keep', 'link', 'made', 'new', 'proc', 'root', 'sys', 'tmp', 'tree'],
    })
    expect(state.config.rootfs.diff_ids.at(-1)).toBe(layer.diffId)
    expectClean()
  })

  it('the copy fallback writes the same entries', async () => {
    const overlay = await run(parent, script)
    setOverlaySupport(store, false)
    try {
      const copied = await run(parent, script)
      const shape = async (l: LayerRef) => (await listLayer(l)).map(({ path, type, mode, uid, gid, size, linkpath }) => ({ path, type, mode, uid, gid, size, linkpath }))
      expect(await shape(copied.state.layers.at(-1)!)).toEqual(await shape(overlay.state.layers.at(-1)!))
    } finally {
      setOverlaySupport(store, undefined)
    }
    expectClean()
  })

  it('a step that changes nothing keeps only the directories its mounts needed: on a base without /proc, /dev, /sys those and /etc, then /etc', async () => {
    expect(existsSync(join((await ensureSnapshot(store, busybox.layers[0]!)).dir, 'proc'))).toBe(false)
    const { state } = await run(busybox, 'true')
    expect(await paths(state.layers.at(-1)!)).toEqual(MOUNT_DIRS)
    const again = await run(state, 'true')
    expect(await paths(again.state.layers.at(-1)!)).toEqual(['etc'])
  })

  it('keeps uid/gid/mode and security.capability of copied-up files', async () => {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex')
    const withCap = await addLayer(busybox, [file('capbin', 'bin', { mode: 0o755, xattrs: { 'security.capability': cap } })])
    const { state } = await run(withCap, 'chmod 0750 /capbin && touch /owned && chown 1000:1000 /owned && chmod 4711 /owned')
    const listed = await listLayer(state.layers.at(-1)!)
    expect(listed.find((e) => e.path === 'capbin')).toMatchObject({ mode: 0o750 })
    expect(listed.find((e) => e.path === 'owned')).toMatchObject({ uid: 1000, gid: 1000, mode: 0o4711 })
    // unpacked again (GNU tar reads the PAX SCHILY.xattr record), the capability is there
    const snap = await ensureSnapshot(store, state.layers.at(-1)!)
    const attr = execFileSync('getfattr', ['--absolute-names', '-e', 'hex', '-n', 'security.capability', join(snap.dir, 'capbin')]).toString()
    expect(attr).toContain(`0x${cap.toString('hex')}`)
  })

  it('keeps real mtimes, or clamps them to the epoch when asked', async () => {
    const kept = await listLayer((await run(busybox, 'touch -d @1800000000 /future && touch /now')).state.layers.at(-1)!)
    expect(kept.find((e) => e.path === 'future')!.mtime).toBe(1_800_000_000)
    expect(kept.find((e) => e.path === 'now')!.mtime).toBeGreaterThan(T)
    const clamped = await listLayer((await run(busybox, 'touch -d @1800000000 /future && touch /now', {}, { clampRunMtimes: true, epoch: T })).state.layers.at(-1)!)
    for (const e of clamped) expect(e.mtime).toBeLessThanOrEqual(T)
  })

  it('records BuildKit history: shell form, exec form, ARG prefix', async () => {
    const withArgs = { ...busybox, args: [{ name: 'A', value: '1' }, { name: 'B' }, { name: 'C', value: 'x y' }] }
    const shell = await run(withArgs, 'echo hi')
    expect(shell.state.config.history!.at(-1)).toEqual({ created: '2024-01-01T00:00:00Z', created_by: 'RUN |2 A=1 C=x y /bin/sh -c echo hi # buildkit' })
    const exec = await run(busybox, ['/bin/echo', 'a b', 'c'])
    expect(exec.state.config.history!.at(-1)!.created_by).toBe('RUN /bin/echo a b c # buildkit')
    const mounted = await run(busybox, 'true', { mounts: [{ type: 'tmpfs', target: '/t' }] })
    expect(mounted.state.config.history!.at(-1)!.created_by).toBe('RUN /bin/sh -c true # buildkit')
  })
})

describe('Dockerfile semantics', () => {
  it('string form runs through SHELL, array form execs directly', async () => {
    await run(withConfig(busybox, { Shell: ['/bin/echo', 'via-shell'] }), 'the $HOME command')
    expect(output()).toBe('via-shell the $HOME command\n')
    events = []
    await run(busybox, ['/bin/echo', '$HOME', 'stays'])
    expect(output()).toBe('$HOME stays\n')
    events = []
    await run(busybox, 'echo $0')
    expect(output()).toBe('/bin/sh\n')
  })

  it('Env = config Env + build ARGs (ENV wins, ARGs never stored); default PATH', async () => {
    const state = withConfig(busybox, { Env: ['FOO=from-env', 'SHARED=env'] }, [{ name: 'BAR', value: 'from-arg' }, { name: 'SHARED', value: 'arg' }, { name: 'UNSET' }])
    const { state: after } = await run(state, 'echo "$FOO $BAR $SHARED ${UNSET-unset} $PATH"')
    expect(output()).toBe('from-env from-arg env unset /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n')
    expect(after.config.config.Env).toEqual(['FOO=from-env', 'SHARED=env'])
    expect(JSON.stringify(after.config.config)).not.toContain('from-arg')
  })

  it('creates a missing WORKDIR (owned by the USER) and runs in it', async () => {
    const { state } = await run(withConfig(busybox, { WorkingDir: '/srv/app', User: 'app' }), 'pwd && touch mine')
    expect(output()).toBe('/srv/app\n')
    const listed = await listLayer(state.layers.at(-1)!)
    expect(listed.map((e) => e.path)).toEqual(['dev', 'etc', 'proc', 'srv', 'srv/app', 'srv/app/mine', 'sys'])
    expect(listed.find((e) => e.path === 'srv/app/mine')).toMatchObject({ uid: 1000, gid: 1000 })
  })

  it('resolves USER by name, uid and uid:gid through the image files', async () => {
    await run(withConfig(busybox, { User: 'app' }), 'id -u; id -g; echo $HOME')
    await run(withConfig(busybox, { User: '1234:5678' }), 'id -u; id -g')
    await run(withConfig(busybox, { User: 'app:nogroup' }), 'id -u; id -g')
    expect(output()).toBe('1000\n1000\n/home/app\n1234\n5678\n1000\n65534\n')
    await expect(run(withConfig(busybox, { User: 'nobody-here' }), 'true')).rejects.toMatchObject({ code: 'USER_NOT_FOUND' })
    expectClean()
  })

  it('a non-zero exit fails with ExecError: exit code, command, output tail', async () => {
    const err = await run(busybox, 'for i in $(seq 1 50); do echo line$i; done; sleep 0.3; echo oops >&2; exit 7').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ExecError)
    const e = err as ExecError
    expect(e.code).toBe('RUN_FAILED')
    expect(e.exitCode).toBe(7)
    expect(e.command).toEqual(['/bin/sh', '-c', 'for i in $(seq 1 50); do echo line$i; done; sleep 0.3; echo oops >&2; exit 7'])
    // stdout and stderr are separate pipes; the pause lets the stdout lines arrive first.
    const tail = e.outputTail.split('\n')
    expect(tail.length).toBeLessThanOrEqual(20)
    expect(tail.at(-1)).toBe('oops')
    expect(tail).toContain('line50')
    expect(e.outputTail).not.toContain('line10\n')
    // output streamed live as log events, per stream
    expect(events.some((ev) => ev.type === 'log' && ev.stream === 'stderr' && ev.data.toString().includes('oops'))).toBe(true)
    expectClean()
  })

  it('uses a private network (lo + slirp4netns tap0) by default and a loopback-only one with network none', async () => {
    const count = async (spec: Partial<RunSpec>, ctx: Partial<ExecContext> = {}) => {
      events = []
      await run(busybox, 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " | sort', spec, ctx)
      return output().trim().split('\n')
    }
    const host = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0]!.trim()).sort()
    expect(await count({})).toEqual(['lo', 'tap0'])
    expect(await count({ network: 'none' })).toEqual(['lo'])
    expect(await count({}, { network: 'none' })).toEqual(['lo'])
    expect(await count({ network: 'host' }, { network: 'none', allow: ['network.host'] })).toEqual(host)
  })

  it('gets a fresh hostname, /etc/hosts and the host resolv.conf, none stored', async () => {
    const { state } = await run(busybox, 'hostname; cat /etc/resolv.conf; grep -c localhost /etc/hosts')
    expect(output()).toBe(`imagesmith\n${readFileSync('/etc/resolv.conf', 'utf8')}2\n`.replace('\n\n', '\n'))
    expect(await paths(state.layers.at(-1)!)).toEqual(MOUNT_DIRS)
  })
})

describe('RUN --mount', () => {
  it('cache: persists across steps, never in the layer', async () => {
    const m: MountSpec = { type: 'cache', target: '/var/cache/thing', id: 'thing', sharing: 'shared', readonly: false }
    const first = await run(busybox, 'echo one >> /var/cache/thing/log; touch /out1', { mounts: [m] })
    // The directories made for the mount stay (as in buildah 1.28 and docker 20.10), its contents never.
    expect(await paths(first.state.layers.at(-1)!)).toEqual([...MOUNT_DIRS, 'out1', 'var', 'var/cache'].sort())
    await run(busybox, 'cat /var/cache/thing/log', { mounts: [m] })
    expect(output()).toBe('one\n')
    expect(readFileSync(join(store.cacheMountDir('thing'), 'log'), 'utf8')).toBe('one\n')
  })

  it('cache with sharing locked: steps take turns', async () => {
    const m: MountSpec = { type: 'cache', target: '/c', id: 'locked', sharing: 'locked', readonly: false }
    const step = 'echo start >> /c/log; sleep 0.3; echo end >> /c/log'
    await Promise.all([run(busybox, step, { mounts: [m] }), run(busybox, step, { mounts: [m] })])
    expect(readFileSync(join(store.cacheMountDir('locked'), 'log'), 'utf8')).toBe('start\nend\nstart\nend\n')
    expectClean()
  })

  it('secret: file and env, never in a layer, history or config; required and missing fails', async () => {
    const value = 'S3cr3t-value-4a7c'
    const secrets = { tok: { value }, fromfile: { src: join(contextDir, 'sub', 'data.txt') } }
    const mounts: MountSpec[] = [
      { type: 'secret', id: 'tok', target: '/run/secrets/tok', required: true, mode: 0o400, uid: 0, gid: 0 },
      { type: 'secret', id: 'tok', target: '', env: 'TOKEN', required: true, mode: 0o400, uid: 0, gid: 0 },
      { type: 'secret', id: 'fromfile', target: '/etc/extra/secret', required: false, mode: 0o440, uid: 1000, gid: 0 },
      { type: 'secret', id: 'absent', target: '/run/secrets/absent', required: false, mode: 0o400, uid: 0, gid: 0 },
    ]
    const { state } = await run(busybox, 'cat /run/secrets/tok; echo; echo $TOKEN; cat /etc/extra/secret; stat -c %a:%u /etc/extra/secret; test -e /run/secrets/absent || echo no-absent', { mounts }, { secrets })
    expect(output()).toBe(`${value}\n${value}\nfrom context\n440:1000\nno-absent\n`)
    expect(await paths(state.layers.at(-1)!)).toEqual([...MOUNT_DIRS, 'etc/extra', 'run', 'run/secrets'].sort())
    expect(JSON.stringify(state.config)).not.toContain(value)
    const blobDir = join(store.root, 'blobs', 'sha256')
    const hits = execFileSync('sh', ['-c', `for f in ${blobDir}/*; do (gzip -dc "$f" 2>/dev/null || cat "$f") | grep -l -a -F '${value}' >/dev/null && echo "$f"; done; true`]).toString()
    expect(hits).toBe('')
    await expect(run(busybox, 'true', { mounts: [{ type: 'secret', id: 'nope', target: '/run/secrets/nope', required: true, mode: 0o400, uid: 0, gid: 0 }] })).rejects.toMatchObject({ code: 'SECRET_NOT_FOUND' })
    expectClean()
  })

  it('bind from the context: read-only, or writable with writes discarded', async () => {
    const ro: MountSpec = { type: 'bind', target: '/src', source: 'sub', readwrite: false }
    const { state } = await run(busybox, 'cat /src/data.txt; echo x > /src/new 2>/dev/null || echo read-only', { mounts: [ro] })
    expect(output()).toBe('from context\nread-only\n')
    expect(await paths(state.layers.at(-1)!)).toEqual(MOUNT_DIRS)
    events = []
    const rw: MountSpec = { type: 'bind', target: '/src', source: 'sub', readwrite: true }
    const second = await run(busybox, 'echo changed > /src/data.txt && echo new > /src/new && cat /src/data.txt', { mounts: [rw] })
    expect(output()).toBe('changed\n')
    expect(readFileSync(join(contextDir, 'sub', 'data.txt'), 'utf8')).toBe('from context\n')
    expect(existsSync(join(contextDir, 'sub', 'new'))).toBe(false)
    expect(await paths(second.state.layers.at(-1)!)).toEqual(MOUNT_DIRS)
    expectClean()
  })

  it('bind from another stage', async () => {
    const other = await addLayer(busybox, [dir('payload'), file('payload/p.txt', 'from stage\n')])
    const m: MountSpec = { type: 'bind', target: '/mnt/other', source: '/payload', fromInput: 1, readwrite: false }
    const { state } = await run(busybox, 'cat /mnt/other/p.txt; cp /mnt/other/p.txt /copied', { mounts: [m] }, {}, [other])
    expect(output()).toBe('from stage\n')
    expect(await paths(state.layers.at(-1)!)).toEqual(['copied', ...MOUNT_DIRS, 'mnt'].sort())
    expectClean()
  })

  it('tmpfs: writes stay out of the layer', async () => {
    const { state } = await run(busybox, 'echo x > /scratch/x && ls /scratch', { mounts: [{ type: 'tmpfs', target: '/scratch' }] })
    expect(output()).toBe('x\n')
    expect(await paths(state.layers.at(-1)!)).toEqual(MOUNT_DIRS)
  })
})

describe('cache key', () => {
  it('hits for the same step, misses when env, parent or bound context content change', async () => {
    const ctx = { noCache: false }
    const v = vertex('date +%s%N > /stamp')
    const a = await runExecutor.exec(v, [busybox], ctxOf(ctx))
    const b = await runExecutor.exec(v, [busybox], ctxOf(ctx))
    expect([a.cached, b.cached]).toEqual([false, true])
    expect(b.state.layers.at(-1)).toEqual(a.state.layers.at(-1))
    expect(b.key).toEqual(a.key)
    const c = await runExecutor.exec(v, [withConfig(busybox, { Env: ['X=1'] })], ctxOf(ctx))
    expect(c.cached).toBe(false)
    // The key keeps its document: the miss is explained by the env that changed.
    expect(c.key!.doc.env).not.toEqual(a.key!.doc.env)
    expect(c.key!.digest).not.toBe(a.key!.digest)
    const d = await runExecutor.exec(v, [{ ...busybox, args: [{ name: 'A', value: '1' }] }], ctxOf(ctx))
    expect(d.cached).toBe(false)

    const bind = vertex('cat /src/data.txt > /out', { mounts: [{ type: 'bind', target: '/src', source: 'sub', readwrite: false }] })
    expect((await runExecutor.exec(bind, [busybox], ctxOf(ctx))).cached).toBe(false)
    expect((await runExecutor.exec(bind, [busybox], ctxOf(ctx))).cached).toBe(true)
    writeFileSync(join(contextDir, 'sub', 'data.txt'), 'from context\n') // same bytes, new ctime
    writeFileSync(join(contextDir, 'sub', 'other.txt'), 'x')
    expect((await runExecutor.exec(bind, [busybox], ctxOf(ctx))).cached).toBe(false)
  })
})

describe('cancellation and cleanup', () => {
  it('an aborted step kills its container and leaves no mounts, bundles or containers', async () => {
    const ac = new AbortController()
    const started = Date.now()
    const p = run(busybox, 'sleep 30', { mounts: [{ type: 'tmpfs', target: '/t' }, { type: 'secret', id: 's', target: '/run/secrets/s', required: true, mode: 0o400, uid: 0, gid: 0 }] }, { signal: ac.signal, secrets: { s: { value: 'v' } } })
    // Abort only once the step's process runs in its container: the kill path, not an early exit.
    const settled = p.then(() => 'resolved', () => 'rejected')
    let sleepers: number[] = []
    for (const end = Date.now() + 60_000; sleepers.length === 0 && Date.now() < end; ) {
      if ((await Promise.race([settled, new Promise((r) => setTimeout(() => r(''), 20))])) !== '') break
      sleepers = sleepersUnder(store.root, '30')
    }
    expect(sleepers, 'the step never started its sleep').toHaveLength(1)
    const aborted = Date.now()
    ac.abort()
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' })
    expect(Date.now() - aborted).toBeLessThan(10_000)
    expect(Date.now() - started).toBeLessThan(70_000)
    expect(sleepersUnder(store.root, '30')).toEqual([])
    expectClean()
  })

  it('a killed process leaves no mounts behind (SIGTERM runs the cleanup registry)', async () => {
    const script = join(root, 'kill-me.mts')
    writeFileSync(
      script,
      `${stepScriptPrelude(store.root, busybox.layers)}await runExecutor.exec({ id: 'sha256:${'e'.repeat(64)}', kind: 'run', spec: { command: ['echo ready; sleep 30'], shellForm: true, network: 'default', mounts: [] }, inputs: [], meta: { description: '' } }, [state], ctx)
`,
    )
    const { spawn } = await import('node:child_process')
    const child = spawn(join(process.cwd(), 'node_modules/.bin/tsx'), [script], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()))
    expect(mountsUnder(store.root).length).toBeGreaterThan(0)
    child.kill('SIGTERM')
    await new Promise((r) => child.on('close', r))
    expect(mountsUnder(store.root)).toEqual([])
    expect(readdirSync(store.workDir())).toEqual([])
    expect(sleepersUnder(store.root, '30')).toEqual([])
  })
})

describe('on the Debian base', () => {
  it('runs apt-get and useradd; USER app then resolves', async () => {
    const debian = await baseFromTar(store, debianRootfsTar())
    const { state } = await run(debian, 'apt-get --version | head -1 && useradd -r app')
    expect(output()).toMatch(/^apt \d/)
    const changed = await paths(state.layers.at(-1)!)
    expect(changed).toEqual(expect.arrayContaining(['etc/passwd', 'etc/group', 'etc/shadow']))
    for (const p of changed) expect(p).not.toMatch(NEVER_IN_A_LAYER)
    events = []
    await run(withConfig(state, { User: 'app' }), 'id -un')
    expect(output()).toBe('app\n')
    expectClean()
  })
})

// ---------------------------------------------------------------------------------------------
// End to end: builder → solver → OCI archive → podman

const bed = requireTools(['podman', 'runc'], { needsRoot: !canBuildRootless() })
// podman run by a user namespace's root (the RUN suites rerun as the test user) takes the host
// root's lock file in /dev/shm and fails: these checks of the output skip there; the rerun through
// build() as the plain user runs them with the user's own podman.
const podmanHere = !inUserNamespace()

/** Layer blobs of an OCI archive, in manifest order, extracted to `dir`. */
function archiveLayers(archive: string, dir: string): string[] {
  mkdirSync(dir, { recursive: true })
  execFileSync('tar', ['-xf', archive, '-C', dir])
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }
  const blob = (d: string) => join(dir, 'blobs', 'sha256', d.slice(7))
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] }
  return manifest.layers.map((l) => blob(l.digest))
}

const tarNames = (blob: string) => execFileSync('tar', ['-tzf', blob]).toString().split('\n').filter(Boolean).map((n) => n.replace(/\/$/, '')).sort()

describe.skipIf(bed.skip)('end to end: build() with RUN steps, loaded by podman', () => {
  const secret = 'e2e-S3CRET-9f1d2'
  let work: string
  let ctxDir: string
  let storeDir: string

  beforeAll(async () => {
    work = await tmpDir('ism-run-e2e-')
    ctxDir = join(work, 'ctx')
    storeDir = join(work, 'store')
    mkdirSync(join(ctxDir, 'tree/sub'), { recursive: true })
    writeFileSync(join(ctxDir, 'a'), 'a1\n')
    writeFileSync(join(ctxDir, 'gone'), 'bye\n')
    writeFileSync(join(ctxDir, 'tree/old1'), 'o1\n')
    writeFileSync(join(ctxDir, 'tree/sub/old2'), 'o2\n')
    writeFileSync(join(ctxDir, 'bound.txt'), 'bound from context\n')
  })

  it.skipIf(!podmanHere)('creates, changes and deletes files; podman shows exactly that tree; layers hold the right whiteouts', async () => {
    const archive = join(work, 'app.tar')
    const app = image()
      .from(`oci-archive:${busyboxArchive()}`)
      .copy(['a', 'gone'], '/keep/')
      .copy('tree', '/tree')
      .arg('VERSION', '1.2')
      .env('GREETING', 'hi')
      .run('echo changed > /keep/a && rm /keep/gone && rm /bin/vi && rm -rf /tree && mkdir /tree && echo fresh > /tree/fresh')
      .workdir('/srv/app')
      .run('echo "$GREETING $VERSION $(pwd)" > info', { mounts: [{ type: 'cache', target: '/root/.cache', id: 'e2e' }] })
      .run('cat /run/secrets/tok | wc -c > /secret-len && cat /ctx/bound.txt > /from-bind', {
        mounts: [{ type: 'secret', id: 'tok', required: true }, { type: 'bind', target: '/ctx', source: '.' }],
      })
      .shell(['/bin/sh', '-ec'])
      .run(['/bin/sh', '-c', 'echo builder:x:1500:1500::/tmp:/bin/sh >> /etc/passwd'])
      .user('builder')
      .run('id -un > /tmp/whoami')
      .cmd(['sh', '-c', 'cat /keep/a; ls /keep; ls /tree; test -e /bin/vi || echo vi-gone; cat /srv/app/info /secret-len /from-bind /tmp/whoami; ls /root/.cache 2>/dev/null | wc -l'])
    const logs: string[] = []
    const result = await app.build({
      context: ctxDir,
      cacheDir: storeDir,
      output: { type: 'oci', dest: archive },
      tags: ['imagesmith-test/run:1'],
      secrets: { tok: { value: secret } },
      onProgress: (e) => { if (e.type === 'log') logs.push(e.data.toString()) },
    })
    expect(result.config.config.Env).toEqual(expect.arrayContaining(['GREETING=hi']))
    expect(JSON.stringify(result.config.config)).not.toContain('VERSION')

    const podman = await podmanStore()
    const loaded = await podman.load(archive)
    const r = await podman.run(loaded.id)
    expect(r.stdout).toBe(['changed', 'a', 'fresh', 'vi-gone', 'hi 1.2 /srv/app', String(secret.length), 'bound from context', 'builder', '0', ''].join('\n'))

    const history = (result.config.history ?? []).map((h) => h.created_by)
    expect(history).toContain('RUN |1 VERSION=1.2 /bin/sh -c echo changed > /keep/a && rm /keep/gone && rm /bin/vi && rm -rf /tree && mkdir /tree && echo fresh > /tree/fresh # buildkit')
    expect(history).toContain('RUN |1 VERSION=1.2 /bin/sh -c echo builder:x:1500:1500::/tmp:/bin/sh >> /etc/passwd # buildkit')
    expect(history).toContain('RUN |1 VERSION=1.2 /bin/sh -ec id -un > /tmp/whoami # buildkit')

    const layers = archiveLayers(archive, join(work, 'x'))
    expect(tarNames(layers[3]!)).toEqual(['bin', 'bin/.wh.vi', 'dev', 'etc', 'keep', 'keep/.wh.gone', 'keep/a', 'proc', 'sys', 'tree', 'tree/.wh..wh..opq', 'tree/fresh'])
    // WORKDIR /srv/app makes the directory in its own layer (BuildKit does the same); the RUN after it adds info.
    expect(tarNames(layers[4]!)).toEqual(['srv', 'srv/app'])
    expect(tarNames(layers[5]!).filter((n) => n.startsWith('srv/app/'))).toEqual(['srv/app/info'])
    expect(tarNames(layers[6]!)).toEqual(['etc', 'from-bind', 'run', 'run/secrets', 'secret-len'])
    for (const l of layers.slice(3)) {
      for (const n of tarNames(l)) expect(n).not.toMatch(/^(proc|sys|dev)\/|^run\/secrets\/|^etc\/(resolv\.conf|hosts|hostname)$|^ctx|^root\/.cache/)
    }
    // the secret's value is in no blob of the output, compressed or not
    const blobs = readdirSync(join(work, 'x', 'blobs', 'sha256')).map((n) => join(work, 'x', 'blobs', 'sha256', n))
    for (const b of [archive, ...blobs]) {
      const raw = readFileSync(b)
      expect(raw.includes(secret)).toBe(false)
      if (raw[0] === 0x1f && raw[1] === 0x8b) expect(execFileSync('gzip', ['-dc', b], { maxBuffer: 1 << 30 }).includes(secret)).toBe(false)
    }
    expect(logs.join('')).not.toContain(secret)
    expect(mountsUnder(storeDir)).toEqual([])
    expect(readdirSync(join(storeDir, 'work'))).toEqual([])

    // rebuilt on the same store: every RUN is a cache hit, same digest
    const again = await app.build({ context: ctxDir, cacheDir: storeDir, secrets: { tok: { value: secret } } })
    expect(again.digest).toBe(result.digest)
    expect(again.cacheHits).toBeGreaterThanOrEqual(6)
  })

  it('a failing RUN fails the build with ExecError and leaves nothing mounted', async () => {
    const err = await image().from(`oci-archive:${busyboxArchive()}`).run('echo before; exit 42').build({ cacheDir: storeDir, context: ctxDir }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ExecError)
    expect(err).toMatchObject({ exitCode: 42, outputTail: 'before' })
    expect(mountsUnder(storeDir)).toEqual([])
    expect(readdirSync(join(storeDir, 'work'))).toEqual([])
  })

  it('stacks a layer that occurs twice (two empty RUNs; a file made, deleted and made again byte for byte)', async () => {
    // With clamped mtimes the first and third RUN write identical layers: one diffID twice in the stack.
    const app = image().from(`oci-archive:${busyboxArchive()}`)
      .run('true').run('true')
      .run('echo same > /a', { network: 'none' }).run('rm /a', { network: 'none' }).run('echo same > /a', { network: 'none' })
      .run('cat /a > /b', { network: 'none' })
    const result = await app.build({ cacheDir: storeDir, context: ctxDir, sourceDateEpoch: T })
    const layers = result.manifest.layers.map((l) => l.digest)
    expect(new Set(layers).size).toBeLessThan(layers.length) // the duplicates really are in the stack
    // `cat /a` succeeded: the file made again is visible above its whiteout.
    expect(mountsUnder(storeDir)).toEqual([])
  })

  it('an aborted build kills its container and leaves nothing mounted', async () => {
    const ac = new AbortController()
    const p = image().from(`oci-archive:${busyboxArchive()}`).run('echo started; sleep 60').build({
      cacheDir: storeDir,
      context: ctxDir,
      signal: ac.signal,
      onProgress: (e) => { if (e.type === 'log') ac.abort() },
    })
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' })
    // The kernel reaps the container's processes as its pid namespace goes away: allow it a moment.
    for (let i = 0; i < 40 && sleepersUnder(storeDir, '60').length > 0; i++) await new Promise((r) => setTimeout(r, 50))
    expect(sleepersUnder(storeDir, '60')).toEqual([])
    expect(mountsUnder(storeDir)).toEqual([])
    expect(readdirSync(join(storeDir, 'work'))).toEqual([])
    expect(pendingCleanups()).toEqual([])
  })

  it.skipIf(!podmanHere)('Debian: apt-get and useradd work, USER app resolves', async () => {
    const archive = join(work, 'deb.tar')
    await image()
      .from(`oci-archive:${debianArchive()}`)
      .run('apt-get --version | head -1 > /apt-version && useradd -r app')
      .user('app')
      .run('id -un > /tmp/who')
      .cmd(['sh', '-c', 'cat /apt-version /tmp/who'])
      .build({ cacheDir: storeDir, context: ctxDir, output: { type: 'oci', dest: archive } })
    const podman = await podmanStore()
    const r = await podman.run((await podman.load(archive)).id)
    expect(r.stdout).toMatch(/^apt \d[^\n]*\napp\n$/)
    expect(mountsUnder(storeDir)).toEqual([])
  })
})
