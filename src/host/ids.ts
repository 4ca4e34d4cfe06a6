/**
 * Ids a rootless build's namespace does not map. An unpack or a step that meets one fails with a
 * typed error naming the id and the fix, as podman's "potentially insufficient UIDs or GIDs
 * available in user namespace" does, instead of tar's or runc's EINVAL.
 */
import { readFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { parsePasswd } from './passwd.js'
import { highestMapped, isMapped, userNamespace, type UserNamespace } from './user-namespace.js'

/** The `usermod` line that gives `user` the customary range. */
export function usermodFix(user: string): string {
  return `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}`
}

/** The host user behind container root (inside the namespace, userInfo() says "root"). */
function userName(ns: UserNamespace): string {
  const host = ns.uids.find((r) => r.inside === 0)?.outside
  try {
    return parsePasswd(readFileSync('/etc/passwd', 'utf8')).find((e) => e.uid === host)?.name ?? userInfo().username
  } catch {
    return 'USER'
  }
}

/** The error for `id` (a uid or gid) outside the namespace `ns`. */
export function unmappedIdError(ns: UserNamespace, kind: 'uid' | 'gid', id: number, where: { path?: string; step?: string; layer?: string }): ImagesmithError {
  const max = highestMapped(kind === 'uid' ? ns.uids : ns.gids)
  const fix = usermodFix(userName(ns))
  const what = where.path !== undefined ? ` (owner of ${where.path}${where.layer ? ` in layer ${where.layer}` : ''})` : where.step !== undefined ? ` (the user of ${where.step})` : ''
  const have = ns.singleId ? 'only container root (the user has no subordinate ids)' : `ids 0-${max}`
  return new ImagesmithError(
    ErrorCodes.ROOTLESS_ID_UNMAPPED,
    `${kind} ${id}${what} is outside this rootless build's user namespace, which maps ${have}: potentially insufficient UIDs or GIDs available. ` +
      `As root, give the user a subordinate range of at least ${id + 1} ids, e.g. ${fix}`,
    { id, kind, max, fix, ...where },
  )
}

/** Throws when `uid` or `gid` is not mapped in this process's namespace (never outside one). */
export function requireMapped(ids: { uid: number; gid: number; additionalGids?: readonly number[] }, where: { step?: string; path?: string }): void {
  const ns = userNamespace()
  if (!ns) return
  if (!isMapped(ids.uid, ns.uids)) throw unmappedIdError(ns, 'uid', ids.uid, where)
  for (const gid of [ids.gid, ...(ids.additionalGids ?? [])]) if (!isMapped(gid, ns.gids)) throw unmappedIdError(ns, 'gid', gid, where)
}

/**
 * The typed error for GNU tar's complaint about an owner it could not set (`Cannot change ownership
 * to uid 1000, gid 1000: Invalid argument`) inside a namespace, else undefined.
 */
export function unmappedFromTar(stderr: string, layer: string, ns: UserNamespace | undefined = userNamespace()): ImagesmithError | undefined {
  if (!ns) return undefined
  const m = /^tar: (.*): Cannot change ownership to uid (\d+), gid (\d+): Invalid argument$/m.exec(stderr)
  if (!m) return undefined
  const path = m[1]!
  const uid = Number(m[2])
  const gid = Number(m[3])
  const kind = isMapped(uid, ns.uids) ? 'gid' : 'uid'
  return unmappedIdError(ns, kind, kind === 'uid' ? uid : gid, { path: `/${path.replace(/^\.?\//, '')}`, layer })
}

/**
 * For a RUN that failed in a single-id namespace with the kernel's answer to an unmapped owner
 * (`chown: …: Invalid argument`, EPERM from setgroups/setuid): what happened and the fix. Rootless
 * podman fails the same way; the step's own output alone does not say why.
 */
export function singleIdHint(output: string, ns: UserNamespace | undefined = userNamespace()): string | undefined {
  if (!ns?.singleId || !/invalid argument|operation not permitted/i.test(output)) return undefined
  return `This rootless build maps only container root (the user has no subordinate ids), so a chown or a switch to any other uid or gid fails. ` +
    `As root, give the user a subordinate range: ${usermodFix(userName(ns))}`
}
