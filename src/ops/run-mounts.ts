/**
 * Prepares the mounts of one RUN step: the per-run /etc files (hosts, hostname, resolv.conf) and
 * the step's `--mount`s (cache, secret, bind, tmpfs, ssh), as OCI mount entries. Nothing here is ever
 * written into the rootfs: every mount source lives outside it, so none of it reaches a layer.
 */
import { execFile } from 'node:child_process'
import { chmod, chown, copyFile, lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { connect, createServer, type Socket } from 'node:net'
import { join, posix } from 'node:path'
import { promisify } from 'node:util'
import { abortError, ErrorCodes, ImagesmithError } from '../errors.js'
import type { MountSpec } from '../graph/nodes/run-node.js'
import type { SecretSource } from '../solver/types.js'
import type { Store } from '../store/store.js'
import { registerCleanup, removeSync } from '../runtime/cleanup.js'
import { mountOverlay, unmount } from '../snapshot/overlay.js'
import { hostPath } from '../snapshot/scoped-path.js'
import type { OciMount } from '../runtime/oci-spec.js'
import { SLIRP_DNS } from '../runtime/network.js'
import { isOwnerAlive, ownerTag, parseOwnerTag } from '../util/owner.js'

const execFileP = promisify(execFile)
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Files the runtime provides at run time and that never belong to a layer. */
export const ETC_FILES: readonly string[] = Object.freeze(['/etc/resolv.conf', '/etc/hosts', '/etc/hostname'])

/**
 * The resolv.conf a container on the private (slirp4netns) network gets from the host's, as Docker
 * filters it for the bridge: nameservers on the host's loopback (systemd-resolved's 127.0.0.53,
 * dnsmasq's 127.0.1.1) are unreachable from the namespace and go; so do IPv6 ones (the user-mode
 * stack gives the container IPv4 only). When no nameserver is left, slirp4netns's DNS forwarder
 * (10.0.2.3, which asks the host's resolvers) takes their place. Other lines (search, options) stay.
 */
export function privateResolvConf(host: string): string {
  const kept: string[] = []
  let servers = 0
  for (const line of host.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line)
    if (m) {
      const addr = m[1]!.replace(/%.*$/, '')
      if (/^127\./.test(addr) || addr.includes(':')) continue
      servers++
    }
    kept.push(line)
  }
  while (kept.length > 0 && kept[kept.length - 1]!.trim() === '') kept.pop()
  if (servers === 0) kept.push(`nameserver ${SLIRP_DNS}`)
  return `${kept.join('\n')}\n`
}

/**
 * Writes this run's /etc/hosts, /etc/hostname and resolv.conf into `dir`; returns their binds. The
 * resolv.conf is the host's, filtered by {@link privateResolvConf} when the step is on the private network.
 */
export async function etcMounts(dir: string, hostname: string, opts: { privateNetwork?: boolean; extraHosts?: readonly { host: string; ip: string }[] } = {}): Promise<OciMount[]> {
  let resolv = ''
  try {
    resolv = await readFile('/etc/resolv.conf', 'utf8')
  } catch {
    // no resolver configured on the host: an empty file, as BuildKit writes
  }
  if (opts.privateNetwork) resolv = privateResolvConf(resolv)
  const files: Record<string, string> = {
    hosts: `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n${(opts.extraHosts ?? []).map((h) => `${h.ip}\t${h.host}\n`).join('')}`,
    hostname: `${hostname}\n`,
    'resolv.conf': resolv,
  }
  const out: OciMount[] = []
  for (const [name, text] of Object.entries(files)) {
    const p = join(dir, `etc-${name}`)
    await writeFile(p, text, { mode: 0o644 })
    out.push({ destination: `/etc/${name}`, type: 'bind', source: p, options: ['rbind', 'ro'] })
  }
  return out
}

export interface MountContext {
  readonly store: Store
  readonly contextDir: string
  readonly secrets: Readonly<Record<string, SecretSource>>
  /** SSH agent socket paths by id (the build's `ssh` option). */
  readonly ssh: Readonly<Record<string, string>>
  /** Step-private scratch dir (on the store's filesystem). */
  readonly workDir: string
  /** Where secret files go: a tmpfs, so that secret bytes never touch the disk. */
  readonly secretDir: () => Promise<string>
  /** The container's working dir, for relative targets. */
  readonly cwd: string
  /** Root dirs of the stages that bind mounts read from, by input index. */
  readonly inputRoots: ReadonlyMap<number, string>
  readonly signal?: AbortSignal
}

export interface PreparedMounts {
  readonly mounts: readonly OciMount[]
  /** `NAME=value` pairs of secrets exposed as environment variables. */
  readonly env: readonly string[]
  /** Container paths of every mount target (for the mount-stub cleaner). */
  readonly targets: readonly string[]
  /** Unlocks cache mounts and unmounts copy-on-write binds. Idempotent. */
  release(): Promise<void>
}

/** Reads a secret's value, or undefined when it was not provided. */
export async function secretValue(source: SecretSource | undefined, id = ''): Promise<Buffer | undefined> {
  if (!source) return undefined
  if ('value' in source) return Buffer.from(source.value)
  if ('env' in source) {
    // The secret's own source, named explicitly by the caller (buildx --secret env=…).
    const v = process.env[source.env]
    return v === undefined ? undefined : Buffer.from(v)
  }
  try {
    return await readFile(source.src)
  } catch (e) {
    // The build checked the file before it started: one that went away since is an error, not an absent secret.
    throw new ImagesmithError(ErrorCodes.SECRET_NOT_FOUND, `secret ${JSON.stringify(id)}: file ${source.src} cannot be read: ${(e as Error).message}`, { id, path: source.src }, { cause: e })
  }
}

export async function prepareMounts(specs: readonly MountSpec[], mc: MountContext): Promise<PreparedMounts> {
  const mounts: OciMount[] = []
  const env: string[] = []
  const targets: string[] = []
  const undo: (() => Promise<void>)[] = []
  const release = async () => {
    for (const u of undo.splice(0).reverse()) await u().catch(() => undefined)
  }
  const target = (t: string) => posix.resolve(mc.cwd, t)
  try {
    let n = 0
    let sshN = 0
    for (const m of specs) {
      n++
      switch (m.type) {
        case 'cache': {
          const { dir, unlock } = await acquireCache(mc.store, m, mc.signal)
          undo.push(unlock)
          mounts.push({ destination: target(m.target), type: 'bind', source: dir, options: ['rbind', m.readonly ? 'ro' : 'rw'] })
          targets.push(target(m.target))
          break
        }
        case 'secret': {
          const value = await secretValue(mc.secrets[m.id], m.id)
          if (value === undefined) {
            if (m.required) {
              throw new ImagesmithError(ErrorCodes.SECRET_NOT_FOUND, `secret ${JSON.stringify(m.id)} is required by RUN --mount=type=secret but was not provided`, { id: m.id })
            }
            break // an optional secret that is missing is simply not mounted (BuildKit)
          }
          if (m.env) env.push(`${m.env}=${value.toString('utf8')}`)
          if (m.target) {
            const file = join(await mc.secretDir(), `secret-${n}`)
            await writeFile(file, value, { mode: 0o600 })
            await chown(file, m.uid, m.gid)
            await chmod(file, m.mode)
            mounts.push({ destination: target(m.target), type: 'bind', source: file, options: ['rbind', 'ro'] })
            targets.push(target(m.target))
          }
          break
        }
        case 'bind': {
          const root = m.fromInput === undefined ? mc.contextDir : mc.inputRoots.get(m.fromInput)
          if (root === undefined) throw new ImagesmithError(ErrorCodes.RUN_SETUP_FAILED, `bind mount source stage ${m.fromInput} is not an input of this step`, { mount: m })
          const source = hostPath(root, m.source)
          let st
          try {
            st = await stat(source)
          } catch {
            throw new ImagesmithError(ErrorCodes.RUN_SETUP_FAILED, `bind mount source ${m.source} does not exist`, { source: m.source, target: m.target })
          }
          let src = source
          if (m.readwrite) {
            // Writes are allowed but thrown away: a private overlay (dirs) or copy (files).
            const own = join(mc.workDir, `b${n}`)
            if (st.isDirectory()) {
              for (const d of ['m', 'u', 'w']) await mkdir(join(own, d), { recursive: true })
              await mountOverlay({ lower: [source], upper: join(own, 'u'), work: join(own, 'w'), target: join(own, 'm'), scratch: own })
              const releaseMount = registerCleanup(`bind ${own}/m`, () => removeSync(own))
              undo.push(async () => {
                await unmount(join(own, 'm'))
                releaseMount()
              })
              src = join(own, 'm')
            } else {
              await copyFile(source, own)
              src = own
            }
          }
          mounts.push({ destination: target(m.target), type: 'bind', source: src, options: ['rbind', m.readwrite ? 'rw' : 'ro'] })
          targets.push(target(m.target))
          break
        }
        case 'ssh': {
          const dest = target(m.target || `/run/buildkit/ssh_agent.${sshN}`)
          sshN++
          const agent = mc.ssh[m.id]
          if (agent === undefined) {
            if (m.required) {
              throw new ImagesmithError(ErrorCodes.SSH_NOT_FORWARDED, `RUN --mount=type=ssh,id=${m.id} is required but the build forwards no SSH agent socket ${JSON.stringify(m.id)} (ssh: { ${JSON.stringify(m.id)}: path }, --ssh ${m.id}=PATH)`, { id: m.id, target: dest })
            }
            break // BuildKit leaves an optional ssh mount out when no socket of that id is forwarded
          }
          const proxy = await sshProxy(agent, join(mc.workDir, `ssh-${n}.sock`), m)
          undo.push(proxy.close)
          mounts.push({ destination: dest, type: 'bind', source: proxy.path, options: ['rbind'] })
          targets.push(dest)
          break
        }
        case 'tmpfs': {
          const options = ['nosuid', 'nodev', 'mode=1777', ...(m.size ? [`size=${m.size}`] : [])]
          mounts.push({ destination: target(m.target), type: 'tmpfs', source: 'tmpfs', options })
          targets.push(target(m.target))
          break
        }
      }
    }
  } catch (e) {
    await release()
    throw e
  }
  // Parents before children: a mount inside another mount's target must come after it.
  const order = mounts.map((m, i) => ({ m, i, depth: m.destination.split('/').length }))
  order.sort((a, b) => a.depth - b.depth || a.i - b.i)
  return { mounts: order.map((o) => o.m), env, targets, release }
}

/**
 * The directory of a cache mount, created on first use with the mount's mode and owner.
 * `locked` waits for exclusive use; `private` takes the first instance nobody uses (id, id#1, …);
 * `shared` takes no lock. Locks are `<dir>.lock` directories holding the owner's pid, so they work
 * across processes, and a lock whose process is gone is taken over.
 */
async function acquireCache(store: Store, m: Extract<MountSpec, { type: 'cache' }>, signal: AbortSignal | undefined): Promise<{ dir: string; unlock: () => Promise<void> }> {
  const make = async (dir: string) => {
    try {
      await lstat(dir)
    } catch {
      await mkdir(dir, { recursive: true, mode: m.mode ?? 0o755 })
      await chmod(dir, m.mode ?? 0o755)
      await chown(dir, m.uid ?? 0, m.gid ?? 0)
    }
    return dir
  }
  if (m.sharing === 'shared') return { dir: await make(store.cacheMountDir(m.id)), unlock: async () => {} }
  if (m.sharing === 'private') {
    for (let i = 0; ; i++) {
      const dir = store.cacheMountDir(i === 0 ? m.id : `${m.id}#${i}`)
      const unlock = await tryLock(dir)
      if (unlock) return { dir: await make(dir), unlock }
    }
  }
  const dir = store.cacheMountDir(m.id)
  for (;;) {
    if (signal?.aborted) throw abortError(signal)
    const unlock = await tryLock(dir)
    if (unlock) return { dir: await make(dir), unlock }
    await sleep(50)
  }
}

async function tryLock(dir: string): Promise<(() => Promise<void>) | undefined> {
  const lock = `${dir}.lock`
  await mkdir(posix.dirname(lock), { recursive: true })
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await mkdir(lock)
      await writeFile(join(lock, 'pid'), ownerTag())
      const release = registerCleanup(`cache lock ${lock}`, () => removeSync(lock))
      return async () => {
        await rm(lock, { recursive: true, force: true })
        release()
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const holder = parseOwnerTag((await readFile(join(lock, 'pid'), 'utf8').catch(() => '')).trim())
      if (!holder || isOwnerAlive(holder)) return undefined
      await execFileP('rm', ['-rf', lock]) // the holder died: take the lock over
    }
  }
  return undefined
}


/**
 * A socket that forwards every connection to the SSH agent at `agent`, owned and moded as the mount
 * asks (BuildKit serves a proxy the same way): the host's socket itself is never exposed or changed.
 * The proxy lives in the step's work dir, or under /tmp when that path is too long for a unix socket.
 */
async function sshProxy(agent: string, wanted: string, m: Extract<MountSpec, { type: 'ssh' }>): Promise<{ path: string; close(): Promise<void> }> {
  let st
  try {
    st = await stat(agent)
  } catch {
    st = undefined
  }
  if (!st?.isSocket()) {
    throw new ImagesmithError(ErrorCodes.SSH_NOT_FORWARDED, `SSH agent socket ${JSON.stringify(agent)} for id ${JSON.stringify(m.id)} is not a unix socket`, { id: m.id, path: agent })
  }
  const own = Buffer.byteLength(wanted) > 100 ? await mkdtemp('/tmp/imagesmith-ssh-') : undefined
  const path = own ? join(own, 'agent.sock') : wanted
  const open = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(agent)
    for (const s of [client, upstream]) {
      open.add(s)
      s.on('error', () => { client.destroy(); upstream.destroy() })
      s.on('close', () => open.delete(s))
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => resolve())
  })
  const close = async () => {
    for (const s of open) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    if (own) await rm(own, { recursive: true, force: true })
  }
  try {
    await chown(path, m.uid, m.gid)
    await chmod(path, m.mode)
  } catch (e) {
    await close()
    throw e
  }
  return { path, close }
}
