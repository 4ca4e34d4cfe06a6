/**
 * overlayfs mounts through util-linux `mount`/`umount`.
 *
 * The mount option string is limited to one page (4096 bytes), which long absolute snapshot paths
 * exhaust after ~40 layers. So lower dirs are given as short relative names: a private links dir
 * holds symlinks `0`, `1`, … to the snapshot dirs, and `mount` runs with that dir as its cwd. The
 * kernel resolves the names at mount time and keeps the dentries, so the links dir can go right after.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { storeSlot, type Store } from '../store/store.js'
import { userNamespace } from '../host/user-namespace.js'
import { ownerTag } from '../util/owner.js'
import { rememberedProbe } from '../store/probe-record.js'

const execFileP = promisify(execFile)

/**
 * The xattr that marks an opaque dir. Overlay in a user namespace (a rootless build) may not use
 * trusted.* and is mounted with `userxattr`: its markers are then user.overlay.*, in upper and
 * lower dirs alike, so unpacked snapshots and the layer diff follow.
 */
export function opaqueXattr(): string {
  return userNamespace() ? 'user.overlay.opaque' : 'trusted.overlay.opaque'
}

export interface OverlayMount {
  /** Lower dirs, TOP FIRST (overlay's order: the leftmost one wins). At least one. */
  readonly lower: readonly string[]
  /** Writable upper dir and its work dir (same filesystem); omit both for a read-only view. */
  readonly upper?: string
  readonly work?: string
  readonly target: string
  /** Dir to create the temporary links dir in (same store, short path). */
  readonly scratch: string
}

/** The kernel's limit on stacked lower layers (OVL_MAX_STACK). */
export const MAX_LOWER = 500

/**
 * Mounts an overlay. A writable mount turns off the features that would make the upper dir an
 * incomplete diff: `redirect_dir` (a renamed lower dir would be a redirect xattr instead of a copy),
 * `metacopy` (a chmod would copy metadata only, leaving the data in the lower dir) and `index`.
 * A read-only mount with a single lower dir gets an empty second lower dir: overlay needs two.
 */
export async function mountOverlay(m: OverlayMount): Promise<void> {
  // A layer can occur twice in one stack (two steps with the same diff, e.g. two `RUN true`), and overlay
  // refuses a dir given twice (ELOOP). The upper occurrence holds every path, whiteout and opaque mark the
  // lower one does, so the lower copies add nothing: keep the first (topmost) of each.
  m = { ...m, lower: [...new Set(m.lower)] }
  if (m.lower.length === 0) throw new ImagesmithError(ErrorCodes.MOUNT_FAILED, `overlay on ${m.target} needs at least one lower dir`, { path: m.target, layers: 0 })
  if (m.lower.length > MAX_LOWER) {
    throw new ImagesmithError(ErrorCodes.MOUNT_FAILED, `overlay stacks at most ${MAX_LOWER} layers, this image has ${m.lower.length}`, { path: m.target, layers: m.lower.length, max: MAX_LOWER })
  }
  await mkdir(m.scratch, { recursive: true })
  const links = await mkdtemp(join(m.scratch, `l-${ownerTag()}-`)) // owner tag: swept if we die mid-mount
  try {
    const lower = [...m.lower]
    if (!m.upper && lower.length === 1) {
      const empty = join(links, 'empty')
      await mkdir(empty)
      lower.push(empty)
    }
    await Promise.all(lower.map((dir, i) => symlink(dir, join(links, i.toString(36)))))
    const names = lower.map((_, i) => i.toString(36)).join(':')
    // userxattr refuses redirect_dir=off (which still follows redirects: "conflicting options"); nofollow neither makes nor follows them.
    const inNs = userNamespace() !== undefined
    const user = inNs ? ',userxattr' : ''
    const opts = m.upper
      ? `lowerdir=${names},upperdir=${m.upper},workdir=${m.work},redirect_dir=${inNs ? 'nofollow' : 'off'},index=off,metacopy=off${user}`
      : `ro,lowerdir=${names}${user}`
    try {
      await execFileP('mount', ['-t', 'overlay', 'overlay', '-o', opts, m.target], { cwd: links })
    } catch (e) {
      const stderr = String((e as { stderr?: string }).stderr ?? '').trim()
      throw new ImagesmithError(ErrorCodes.MOUNT_FAILED, `mount -t overlay failed on ${m.target}: ${stderr || (e as Error).message}`, { path: m.target, stderr }, { cause: e })
    }
  } finally {
    await rm(links, { recursive: true, force: true })
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Unmounts `target`, retrying while it is busy (a container process may still be exiting), and
 * detaches it lazily as a last resort so that nothing stays visible in the mount table.
 */
export async function unmount(target: string, retries = 5): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await execFileP('umount', [target])
      return
    } catch (e) {
      const stderr = String((e as { stderr?: string }).stderr ?? '')
      if (/not mounted|no mount point|mountpoint not found|No such file/i.test(stderr)) return
      if (i >= retries) break
      await sleep(20 * 2 ** i)
    }
  }
  await execFileP('umount', ['-l', target]).catch(() => undefined)
}

/** Per store: whether overlay works depends on the filesystem its work dir is on. */
const PROBE = storeSlot('overlay support', (): { probe?: Promise<boolean> } => ({}))

/** Overrides the probe for `store` (tests of the copy fallback on a host that has overlay); undefined re-probes. */
export function setOverlaySupport(store: Store, value: boolean | undefined): void {
  store.local(PROBE).probe = value === undefined ? undefined : Promise.resolve(value)
}

/**
 * Whether a writable overlay can be mounted in the store's work dir (root, or root of a rootless
 * build's user namespace; a kernel with overlayfs; a backing filesystem that supports it). Probed once per store
 * and host identity: later processes read the answer (store/probe-record.ts) instead of mounting again.
 */
export function overlaySupported(store: Store): Promise<boolean> {
  const scratch = store.workDir()
  const state = store.local(PROBE)
  state.probe ??= (async () => {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) return false
    // Only a mount that worked is recorded: a failed one may have been passing trouble, and the copy
    // fallback it leads to is slow.
    return rememberedProbe(store.layout.dir('probes'), store.layout.root, 'overlay', [scratch], (v): v is boolean => v === true, () => probeOverlay(scratch), (v) => v)
  })()
  return state.probe
}

async function probeOverlay(scratch: string): Promise<boolean> {
  await mkdir(scratch, { recursive: true })
  const dir = await mkdtemp(join(scratch, `probe-${ownerTag()}-`))
  try {
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(dir, d))
    await mountOverlay({ lower: [join(dir, 'l')], upper: join(dir, 'u'), work: join(dir, 'w'), target: join(dir, 'm'), scratch: dir })
    await unmount(join(dir, 'm'))
    return true
  } catch {
    return false
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined)
  }
}
