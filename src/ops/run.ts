/**
 * RUN: executes the command in a real container on the parent image's filesystem and turns exactly
 * what it changed into a layer, as BuildKit's runc worker does.
 *
 * rootfs = the parent's layers (unpacked once into the store) stacked as overlay lower dirs, with a
 * fresh upper dir; the runtime (crun or runc) runs an OCI bundle on it; afterwards the upper dir,
 * minus the runtime's own mount points, is the layer (whiteouts and opaque dirs in OCI form),
 * written through the same deterministic writer as COPY. Without overlay the rootfs is a copy and
 * the change set comes from a before/after walk.
 */
import { cpuSlotOf, inSlot } from '../solver/scheduler.js'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { ErrorCodes, ExecError, ImagesmithError, throwIfAborted } from '../errors.js'
import type { Vertex } from '../graph/node.js'
import type { MountSpec, RunSpec } from '../graph/nodes/run-node.js'
import type { LayerEntry } from '../layer/entry.js'
import { fsPath, nameBytes, nameFromBytes } from '../util/names.js'
import { writeLayer } from '../layer/write-layer.js'
import type { LayerRef } from '../oci/types.js'
import type { CacheKeyDoc, ExecContext, Executor, ExecResult, ImageState, LayerPlan } from '../solver/types.js'
import { diffWalk } from '../snapshot/copy-fallback.js'
import { diffUpper } from '../snapshot/diff.js'
import { recordStubs, removeStubs } from '../snapshot/mount-stubs.js'
import { overlaySupported } from '../snapshot/overlay.js'
import { withRootfs } from '../snapshot/rootfs.js'
import { hostPath, mkdirAllInRoot } from '../snapshot/scoped-path.js'
import { ensureSnapshots, writeWithSnapshot, type Snapshot } from '../snapshot/unpack.js'
import { prewritable, type SnapshotTee } from '../snapshot/from-entries.js'
import { withRootfsWorkspace } from '../snapshot/workspace.js'
import { shellOf } from './config.js'
import { execPlan } from '../cache/layer-cache.js'
import { literalRunSpec, solveBudget } from './expand-spec.js'
import { buildSpec } from '../runtime/oci-spec.js'
import { requireMapped, singleIdHint } from '../host/ids.js'
import { detectRuntime } from '../runtime/detect.js'
import { networkTools, startPrivateNetwork, type PrivateNetwork } from '../runtime/network.js'
import type { Runtime } from '../runtime/runtime.js'
import { ETC_FILES, etcMounts, prepareMounts } from './run-mounts.js'
import { DEFAULT_PATH, envMap, withLayer } from './state.js'
import { historyText } from '../graph/instruction-text.js'
import { resolveUser } from './users.js'
import { requireRunnable } from './platform-support.js'

/** The hostname every RUN container gets (BuildKit uses `buildkitsandbox`). */
export const RUN_HOSTNAME = 'imagesmith'

/** Lines of output an ExecError carries. */
const TAIL_LINES = 20
/** Bytes of output kept per step for the error message. */
const TAIL_BYTES = 64 << 10

export const runExecutor: Executor<'run'> = {
  kind: 'run',
  async exec(vertex, inputs, ctx): Promise<ExecResult> {
    return execPlan(await runExecutor.prepare!(vertex, inputs, ctx), ctx)
  },

  /** The key needs no container: the spec, the parent's layers, the effective argv/env and the bound context's stats. */
  async prepare(marked, inputs, ctx): Promise<LayerPlan> {
    const state = inputs[0]
    if (!state) throw new ImagesmithError(ErrorCodes.RUN_SETUP_FAILED, 'RUN has no input state', { vertex: marked.id })
    // Mount words marked for expansion are expanded first; the key then holds their values.
    const vertex = marked.spec.expand ? { ...marked, spec: literalRunSpec(marked.spec, state, solveBudget(ctx)) } : marked
    const step = planStep(vertex.spec, state, ctx)
    return {
      keyDoc: stepKey(vertex, inputs, step, ctx),
      detail: { argNames: state.args.map((a) => a.name), ...(vertex.meta.inputs ? { inputs: vertex.meta.inputs } : {}) },
      make: () => runStep(vertex, inputs, step, ctx),
      finish: (layer) => withLayer(state, ctx, layer, step.createdBy),
    }
  },
}

/** Everything about a step that follows from its spec and the parent state alone. */
export interface StepPlan {
  readonly args: readonly string[]
  readonly env: readonly string[]
  readonly user: string
  readonly cwd: string
  /** 'private': the default network (own namespace, outbound through slirp4netns); 'host' needs the network.host entitlement. */
  readonly network: 'private' | 'none' | 'host'
  /** `security: 'insecure'`: all capabilities, nothing masked (the entitlement was checked). */
  readonly insecure: boolean
  readonly createdBy: string
}

/** The default socket path of the n-th ssh mount of a step (BuildKit's llb ExecOp). */
export function sshTarget(n: number): string {
  return `/run/buildkit/ssh_agent.${n}`
}

/**
 * argv (SHELL + command for the shell form), env (config Env, then build ARGs with a value that
 * ENV does not set — ENV wins, as documented for Dockerfiles — and the default PATH), user, working
 * dir, network, and the history line exactly as BuildKit's dockerfile2llb writes it
 * (`RUN [|N K=V …] <argv joined by spaces> # buildkit`; mount flags do not appear).
 */
export function planStep(spec: RunSpec, state: ImageState, ctx: Pick<ExecContext, 'network'>): StepPlan {
  const config = state.config.config
  const args = spec.shellForm ? [...shellOf(config), spec.command[0]!] : [...spec.command]
  const env = envMap(config.Env)
  for (const a of state.args) if (a.value !== undefined && !env.has(a.name)) env.set(a.name, a.value)
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH)
  const cwd = posix.resolve('/', config.WorkingDir || '/')
  // BuildKit points SSH_AUTH_SOCK at the first ssh mount (unless the env sets it), whether or not a socket is forwarded.
  const ssh = spec.mounts.find((m) => m.type === 'ssh')
  if (ssh && !env.has('SSH_AUTH_SOCK')) env.set('SSH_AUTH_SOCK', posix.resolve(cwd, ssh.target || sshTarget(0)))
  // A step's own network wins; 'default' is the build's, and the build's default is a private namespace.
  const mode: string = spec.network === 'default' ? ctx.network : spec.network
  const network = mode === 'none' ? 'none' : mode === 'host' ? 'host' : 'private'
  return {
    args,
    env: [...env].map(([k, v]) => `${k}=${v}`),
    user: config.User ?? '',
    cwd,
    network,
    insecure: spec.security === 'insecure',
    createdBy: historyText('run', spec, { argv: args, buildArgs: state.args })!,
  }
}

/**
 * The document the cache key of the step's layer is the digest of: the spec (mount ids, never secret values), the layers below
 * (and those of stages bound in), the effective argv/env/user/workdir/network, the mtime rule and
 * compression, and for context bind mounts a stat digest of the bound tree (path, type, mode,
 * owner, size, mtime and ctime in ns, inode): cheap, and any write to a file moves its ctime, so a
 * changed file is never missed (a stat key without ctime is the trap of moby/buildkit#4950).
 * Contents of cache mounts are not part of it, as in BuildKit.
 */
function stepKey(vertex: Vertex<'run'>, inputs: readonly ImageState[], step: StepPlan, ctx: ExecContext): CacheKeyDoc {
  const binds: string[] = []
  for (const m of vertex.spec.mounts) {
    if (m.type === 'bind' && m.fromInput === undefined) binds.push(statDigest(hostPath(ctx.contextDir, m.source)))
  }
  return {
    // v2: the directories the runtime made for its mounts stay in the layer; v1 layers lack them.
    v: 2,
    op: 'run',
    spec: vertex.spec,
    layers: inputs.map((s) => s.layers.map((l) => l.diffId)),
    args: step.args,
    env: step.env,
    user: step.user,
    cwd: step.cwd,
    network: step.network,
    ...(ctx.runSettings ? { settings: ctx.runSettings } : {}),
    mtime: ctx.clampRunMtimes ? { clamp: ctx.epoch } : 'keep',
    compression: ctx.compression,
    binds,
  }
}

function statDigest(root: string): string {
  const h = createHash('sha256')
  const add = (rel: string) => {
    // Names are bytes (util/names.ts): read raw, hashed as their bytes.
    const p = fsPath(rel ? join(root, rel) : root)
    let st
    try {
      st = lstatSync(p, { bigint: true })
    } catch {
      h.update(nameBytes(rel)).update(`\0missing\n`)
      return
    }
    h.update(nameBytes(rel)).update(`\0${st.mode}\0${st.uid}\0${st.gid}\0${st.size}\0${st.mtimeNs}\0${st.ctimeNs}\0${st.ino}\n`)
    if (st.isSymbolicLink()) h.update(readlinkSync(p, { encoding: 'buffer' }))
    if (st.isDirectory()) for (const n of readdirSync(p, { encoding: 'buffer' }).map(nameFromBytes).sort()) add(rel ? `${rel}/${n}` : n)
  }
  add('')
  return h.digest('hex')
}

/** Calls `fn` with the root dirs of the stages that bind mounts read from, each mounted read-only. */
async function withInputRoots<T>(mounts: readonly MountSpec[], inputs: readonly ImageState[], ctx: ExecContext, fn: (roots: Map<number, string>) => Promise<T>): Promise<T> {
  const wanted = [...new Set(mounts.flatMap((m) => (m.type === 'bind' && m.fromInput !== undefined ? [m.fromInput] : [])))]
  const roots = new Map<number, string>()
  const next = async (i: number): Promise<T> => {
    if (i >= wanted.length) return fn(roots)
    const idx = wanted[i]!
    const input = inputs[idx]
    if (!input) throw new ImagesmithError(ErrorCodes.RUN_SETUP_FAILED, `bind mount reads input ${idx}, which this step does not have`, { input: idx })
    return withRootfs(ctx.store, input.layers, { signal: ctx.signal }, async (dir) => {
      roots.set(idx, dir)
      return next(i + 1)
    })
  }
  return next(0)
}

/** Looks a path up in the stacked snapshots (top first), honouring whiteouts; for the diff's pruning. */
function lowerLookup(snapshots: readonly Snapshot[]): (rel: string) => Stats | undefined {
  return (rel) => {
    for (let i = snapshots.length - 1; i >= 0; i--) {
      try {
        const st = lstatSync(fsPath(join(snapshots[i]!.dir, rel)))
        return st.isCharacterDevice() && st.rdev === 0 ? undefined : st
      } catch {
        // not in this layer
      }
    }
    return undefined
  }
}

async function readIn(root: string, path: string): Promise<string | undefined> {
  try {
    return await readFile(hostPath(root, path), 'utf8')
  } catch {
    return undefined
  }
}

/** Keeps the last bytes of a step's output, for the error message. */
class OutputTail {
  #chunks: Buffer[] = []
  #size = 0
  push(d: Buffer): void {
    this.#chunks.push(d)
    this.#size += d.length
    while (this.#size > TAIL_BYTES && this.#chunks.length > 1) this.#size -= this.#chunks.shift()!.length
  }
  lines(n: number): string {
    const text = Buffer.concat(this.#chunks).toString('utf8').replace(/\n$/, '')
    return text.split('\n').slice(-n).join('\n')
  }
}

async function runStep(vertex: Vertex<'run'>, inputs: readonly ImageState[], step: StepPlan, ctx: ExecContext): Promise<LayerRef> {
  const { store, signal } = ctx
  const state = inputs[0]!
  throwIfAborted(signal)
  // Natively or through a registered emulator; otherwise the step fails before anything starts.
  requireRunnable(ctx.platform, vertex.meta.description)
  // Before anything runs: a missing network tool is an error, never a fall-back to the host's network.
  const tools = step.network === 'private' ? networkTools() : undefined
  // The runtime's trial container (once per process), the namespace and slirp4netns all start
  // while the rootfs is put together; the container waits for them. Awaiting the trial first put
  // ~50-100 ms of it before every build's first RUN could even unpack its base.
  const runtime = detectRuntime({ preferred: ctx.runtime, store })
  runtime.catch(() => undefined) // awaited before the container starts
  const net = tools ? startPrivateNetwork(tools, signal) : undefined
  net?.catch(() => undefined) // awaited before the container starts, or closed in the finally below
  try {
    return await runInRootfs(vertex, inputs, step, ctx, runtime, net)
  } finally {
    if (net) await net.then((n) => n.close(), () => undefined)
  }
}

async function runInRootfs(
  vertex: Vertex<'run'>,
  inputs: readonly ImageState[],
  step: StepPlan,
  ctx: ExecContext,
  runtimeFound: Promise<Runtime>,
  net: Promise<PrivateNetwork> | undefined,
): Promise<LayerRef> {
  const { store, signal } = ctx
  const state = inputs[0]!
  const snapshots = await ensureSnapshots(store, state.layers, { signal })
  const useOverlay = await overlaySupported(store)

  return withRootfsWorkspace(store.workDir(), snapshots.map((s) => s.dir), useOverlay, async (ws) => {
    const { rootfs } = ws
    const work = ws.dir
    const user = resolveUser(step.user, await readIn(rootfs, '/etc/passwd'), await readIn(rootfs, '/etc/group'))
    requireMapped(user, { step: vertex.meta.description })
    // The working dir is made if missing (owned by the step's user, as BuildKit's WORKDIR mkdir).
    mkdirAllInRoot(rootfs, step.cwd, user.uid, user.gid)

    // Secrets (files and env values, hence also config.json) live on a tmpfs, never on disk.
    const hasSecrets = vertex.spec.mounts.some((m) => m.type === 'secret')
    let bundle = work
    if (hasSecrets) {
      bundle = join(work, 's')
      await mkdir(bundle)
      await mountTmpfs(bundle)
      ws.track(bundle)
    }

    return await withInputRoots(vertex.spec.mounts, inputs, ctx, async (inputRoots) => {
      const prepared = await prepareMounts(vertex.spec.mounts, {
        store,
        contextDir: ctx.contextDir,
        secrets: ctx.secrets,
        ssh: ctx.ssh ?? {},
        workDir: work,
        secretDir: async () => bundle,
        cwd: step.cwd,
        inputRoots,
        signal,
      })
      try {
        const etc = await etcMounts(work, RUN_HOSTNAME, { privateNetwork: step.network === 'private', extraHosts: ctx.runSettings?.extraHosts ?? [] })
        const stubs = recordStubs(rootfs, [...ETC_FILES, ...prepared.targets])
        const spec = buildSpec({
          args: step.args,
          env: [...step.env, ...prepared.env],
          cwd: step.cwd,
          user,
          rootfs,
          hostname: RUN_HOSTNAME,
          network: net ? { netns: (await net).netns } : step.network === 'none' ? 'none' : 'host',
          insecure: step.insecure,
          ...(ctx.runSettings ? { ulimits: ctx.runSettings.ulimits, ...(ctx.runSettings.shmSize !== undefined ? { shmSize: ctx.runSettings.shmSize } : {}) } : {}),
          mounts: [...etc, ...prepared.mounts],
        })
        const runtime = await runtimeFound
        const tail = new OutputTail()
        const { exitCode } = await inSlot(ctx.limits, 'run', () => runtime.run(spec, bundle, signal, (stream, data) => {
          tail.push(data)
          ctx.emit({ type: 'log', vertex: vertex.id, stream, data })
        }), signal)
        if (net) await (await net).close() // the network dies with the container, not after the layer is written
        if (exitCode !== 0) {
          const lines = tail.lines(TAIL_LINES)
          throw new ExecError(step.args, exitCode, lines, singleIdHint(lines))
        }
        await prepared.release()
        await ws.unmountAll()

        let entries: LayerEntry[]
        const clampMtime = ctx.clampRunMtimes ? ctx.epoch : undefined
        if (useOverlay) {
          removeStubs(ws.upper!, stubs)
          entries = await diffUpper(ws.upper!, { clampMtime, lowerStat: lowerLookup(snapshots) })
        } else {
          removeStubs(rootfs, stubs)
          entries = await diffWalk(rootfs, ws.before!, { clampMtime })
        }
        const onBytes = (bytes: number) => ctx.emit({ type: 'bytes', vertex: vertex.id, bytes, time: Date.now() })
        const write = (tee?: SnapshotTee) => writeLayer(entries, store.blobs, { compression: ctx.compression, signal, ...cpuSlotOf(ctx.limits, signal), onBytes, ...(tee ? { tee } : {}) })
        // A later step of this build mounts this layer (a RUN on top, a COPY --from): its snapshot is
        // written from the upper dir's files as the layer reads them, instead of gunzipped and
        // untarred back from the blob by that step. A layer the tee cannot write (whiteouts, xattrs,
        // special files) is unpacked then, as before.
        return ctx.step?.rootfsWanted && prewritable(entries) ? await writeWithSnapshot(store, write, signal ? { signal } : {}) : await write()
      } finally {
        await prepared.release()
      }
    })
  })
}

async function mountTmpfs(dir: string): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    execFile('mount', ['-t', 'tmpfs', '-o', 'mode=0700,size=16m,nosuid,nodev', 'tmpfs', dir], (err, _o, stderr) =>
      err ? reject(new ImagesmithError(ErrorCodes.RUN_SETUP_FAILED, `cannot mount a tmpfs for secrets: ${stderr.trim() || err.message}`, { dir })) : resolve(),
    ),
  )
}
