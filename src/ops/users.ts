import { ErrorCodes, ImagesmithError } from '../errors.js'
import { parsePasswd } from '../host/passwd.js'

export interface ResolvedUser {
  readonly uid: number
  readonly gid: number
  /** Supplementary groups from /etc/group (for RUN), empty when a group was given explicitly. */
  readonly additionalGids: readonly number[]
  readonly home?: string
}

interface GroupEntry { name: string; gid: number; members: string[] }

function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = []
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':')
    if (f.length < 3 || line.startsWith('#')) continue
    const gid = Number(f[2])
    if (Number.isInteger(gid)) out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter(Boolean) })
  }
  return out
}

const isNum = (s: string) => /^\d+$/.test(s)

/**
 * Resolves `user[:group]` the way Docker does (moby/sys/user.GetExecUser): numeric ids are taken as
 * they are (a uid missing from /etc/passwd is allowed, gid then 0), names must exist in the image's
 * /etc/passwd and /etc/group, else USER_NOT_FOUND naming the user.
 */
export function resolveUser(spec: string, passwd: string | undefined, group: string | undefined): ResolvedUser {
  const [userPart = '', groupPart] = spec.split(':', 2) as [string, string | undefined]
  const users = parsePasswd(passwd)
  const groups = parseGroup(group)
  let uid: number
  let gid = 0
  let name: string | undefined
  let home: string | undefined
  if (userPart === '') {
    uid = 0
  } else if (isNum(userPart)) {
    uid = Number(userPart)
    const u = users.find((e) => e.uid === uid)
    if (u) { gid = u.gid; name = u.name; home = u.home }
  } else {
    const u = users.find((e) => e.name === userPart)
    if (!u) throw new ImagesmithError(ErrorCodes.USER_NOT_FOUND, `unable to find user ${userPart}: no matching entries in passwd file`, { user: userPart })
    uid = u.uid; gid = u.gid; name = u.name; home = u.home
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (isNum(groupPart)) gid = Number(groupPart)
    else {
      const g = groups.find((e) => e.name === groupPart)
      if (!g) throw new ImagesmithError(ErrorCodes.USER_NOT_FOUND, `unable to find group ${groupPart}: no matching entries in group file`, { group: groupPart })
      gid = g.gid
    }
    return { uid, gid, additionalGids: [], home }
  }
  const additionalGids = name ? groups.filter((g) => g.members.includes(name!) && g.gid !== gid).map((g) => g.gid) : []
  return { uid, gid, additionalGids, home }
}
