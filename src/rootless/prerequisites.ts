/**
 * What a rootless build needs from the host, checked before any step runs. Each missing piece is a
 * typed error whose message names the fix: the `usermod` line for a subordinate range, the sysctl
 * for user namespaces, the Debian package for a tool. Without a range at all a build that needs no
 * other ids still runs, with container root as the only id (as rootless podman and buildah do).
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { userInfo } from 'node:os'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { RUNTIME_CANDIDATES, which } from '../runtime/detect.js'
import { usermodFix } from '../host/ids.js'

/** A subordinate id range: `count` ids from `start` (one line of /etc/subuid or /etc/subgid). */
export interface SubordinateRange {
  readonly start: number
  readonly count: number
}

/** How the build's user namespace maps ids: container root = the user, 1 … count = the range. */
export interface RootlessPlan {
  readonly user: string
  readonly uid: number
  readonly gid: number
  /** Absent: single-id mapping (only container root exists). */
  readonly uidRange?: SubordinateRange
  readonly gidRange?: SubordinateRange
  /** Absolute paths of the tools the worker is started with. */
  readonly tools: { readonly unshare: string; readonly newuidmap?: string; readonly newgidmap?: string }
}

/** Where the host keeps its settings; tests point these at files of their own. */
export interface HostFiles {
  readonly subuid: string
  readonly subgid: string
  /** Debian's switch (absent on kernels without the patch). */
  readonly unprivilegedUsernsClone: string
  readonly maxUserNamespaces: string
  /** Ubuntu's AppArmor switch (absent elsewhere). */
  readonly apparmorRestrict: string
  /** The tun device slirp4netns opens. */
  readonly tun: string
}

export const HOST_FILES: HostFiles = Object.freeze({
  subuid: '/etc/subuid',
  subgid: '/etc/subgid',
  unprivilegedUsernsClone: '/proc/sys/kernel/unprivileged_userns_clone',
  maxUserNamespaces: '/proc/sys/user/max_user_namespaces',
  apparmorRestrict: '/proc/sys/kernel/apparmor_restrict_unprivileged_userns',
  tun: '/dev/net/tun',
})

export interface PlanOptions {
  /** Whether the build needs ids other than root (a USER, a chown): then a missing range is an error. */
  readonly needsOtherIds: boolean
  /** Whether a RUN step uses the default (user-mode) network: slirp4netns then opens the tun device as this user. */
  readonly needsNetwork?: boolean
  /** The runtime option of the build (a name or path), else runc or crun must be on PATH. */
  readonly runtime?: string
  /** @default {@link HOST_FILES} */
  readonly files?: HostFiles
  /** PATH to search for the tools. */
  readonly path?: string
  /** @default this process's user */
  readonly user?: { readonly name: string; readonly uid: number; readonly gid: number }
}

/** The first range of `user` (by name or uid) in a subuid/subgid file's text, or undefined. */
export function findRange(text: string, user: string, id: number): SubordinateRange | undefined {
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':')
    if (who !== user && who !== String(id)) continue
    const s = Number(start)
    const c = Number(count)
    if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && s > 0 && c > 0) return { start: s, count: c }
  }
  return undefined
}

function readOr(path: string, fallback: string | undefined): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return fallback
  }
}

/** The error for a build that needs other ids and has no range; also used when an unmapped id turns up. */
export function noRangeError(user: string, why: string): ImagesmithError {
  const fix = usermodFix(user)
  return new ImagesmithError(
    ErrorCodes.ROOTLESS_NO_SUBIDS,
    `${why}, but user ${user} has no subordinate id range in /etc/subuid and /etc/subgid. ` +
      `As root, run: ${fix} (or build as root)`,
    { user, fix },
  )
}

/** The host switches that turn user namespaces off: the value that means off, and the one to set. */
const USERNS_SWITCHES: readonly { readonly file: 'unprivilegedUsernsClone' | 'maxUserNamespaces' | 'apparmorRestrict'; readonly sysctl: string; readonly off: string; readonly on: string; readonly need: string; readonly why: string }[] = [
  { file: 'unprivilegedUsernsClone', sysctl: 'kernel.unprivileged_userns_clone', off: '0', on: '1', need: 'unprivileged user namespaces', why: 'which this host turns off' },
  { file: 'maxUserNamespaces', sysctl: 'user.max_user_namespaces', off: '0', on: '15000', need: 'user namespaces', why: 'which this host limits to none' },
  { file: 'apparmorRestrict', sysctl: 'kernel.apparmor_restrict_unprivileged_userns', off: '1', on: '0', need: 'unprivileged user namespaces', why: 'which AppArmor restricts on this host' },
]

/**
 * Checks the host for a rootless build and says how to map ids, or throws the first missing
 * prerequisite: user namespaces, unshare, an OCI runtime, a subordinate range (only when the build
 * needs other ids) and, with a range, newuidmap/newgidmap.
 */
export function rootlessPlan(opts: PlanOptions): RootlessPlan {
  const files = opts.files ?? HOST_FILES
  const me = opts.user ?? currentUser()
  for (const sw of USERNS_SWITCHES) {
    if (readOr(files[sw.file], undefined)?.trim() !== sw.off) continue
    const fix = `sysctl -w ${sw.sysctl}=${sw.on}`
    throw new ImagesmithError(
      ErrorCodes.ROOTLESS_USERNS_DISABLED,
      `rootless builds need ${sw.need}, ${sw.why} (${sw.sysctl} = ${sw.off}). As root, run: ${fix}`,
      { sysctl: sw.sysctl, fix },
    )
  }
  const unshare = requireTool('unshare', 'util-linux', opts.path)
  requireRuntime(opts.runtime, opts.path)
  if (opts.needsNetwork) requireTun(files.tun, me.name)

  const uidRange = findRange(readOr(files.subuid, '') ?? '', me.name, me.uid)
  const gidRange = findRange(readOr(files.subgid, '') ?? '', me.name, me.uid)
  if (!uidRange || !gidRange) {
    if (opts.needsOtherIds) throw noRangeError(me.name, 'this build needs user ids other than root (a USER or a chown)')
    return Object.freeze({ user: me.name, uid: me.uid, gid: me.gid, tools: Object.freeze({ unshare }) })
  }
  const newuidmap = requireTool('newuidmap', 'uidmap', opts.path)
  const newgidmap = requireTool('newgidmap', 'uidmap', opts.path)
  return Object.freeze({ user: me.name, uid: me.uid, gid: me.gid, uidRange, gidRange, tools: Object.freeze({ unshare, newuidmap, newgidmap }) })
}

function currentUser(): { name: string; uid: number; gid: number } {
  const info = userInfo()
  return { name: info.username, uid: info.uid, gid: info.gid }
}

function requireTool(tool: string, pkg: string, path: string | undefined): string {
  const found = which(tool, path)
  if (found) return found
  throw new ImagesmithError(
    ErrorCodes.ROOTLESS_TOOL_NOT_FOUND,
    `rootless builds need ${tool}, which is not on PATH. As root, run: apt-get install ${pkg}`,
    { tool, package: pkg, fix: `apt-get install ${pkg}` },
  )
}

function requireRuntime(preferred: string | undefined, path: string | undefined): void {
  const names = preferred ? [preferred] : RUNTIME_CANDIDATES
  if (names.some((n) => which(n, path))) return
  const wanted = preferred ? `the runtime ${JSON.stringify(preferred)}` : 'runc'
  throw new ImagesmithError(
    ErrorCodes.RUNTIME_NOT_FOUND,
    `rootless RUN steps need an OCI runtime and ${wanted} is not on PATH. As root, run: apt-get install runc`,
    { tried: names, fix: 'apt-get install runc' },
  )
}

function requireTun(path: string, user: string): void {
  try {
    accessSync(path, constants.R_OK | constants.W_OK)
    return
  } catch (e) {
    let mode = ''
    try {
      mode = ` (mode ${(statSync(path).mode & 0o777).toString(8).padStart(4, '0')})`
    } catch {
      // missing altogether
    }
    const fix = `chmod 0666 ${path}`
    throw new ImagesmithError(
      ErrorCodes.ROOTLESS_TUN_DENIED,
      `RUN's default network (slirp4netns) opens ${path}, which user ${user} cannot${mode}. ` +
        `As root, run: ${fix} (the mode Debian's udev gives it), or give the steps network: 'none'`,
      { path, user, fix },
      { cause: e },
    )
  }
}
