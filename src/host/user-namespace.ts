/**
 * Facts about the user namespace this process runs in, read from /proc (an OS fact, not a setting):
 * a process of a rootless build is root inside a namespace whose ids map onto the user's own id and
 * subordinate range. Code that behaves differently there (overlay's `userxattr`, runc's state dir,
 * cgroup limits, ids a layer may hold) asks here instead of being told.
 */
import { readFileSync } from 'node:fs'

/** One line of /proc/self/uid_map or gid_map: `count` ids from `inside` map to `outside` on the host. */
export interface IdRange {
  readonly inside: number
  readonly outside: number
  readonly count: number
}

/** The id maps of a user namespace other than the host's. */
export interface UserNamespace {
  readonly uids: readonly IdRange[]
  readonly gids: readonly IdRange[]
  /** Only container root is mapped (no subordinate range): a chown or USER to any other id fails. */
  readonly singleId: boolean
}

/** Parses an id map; the host's own namespace is the single line `0 0 4294967295`. */
export function parseIdMap(text: string): IdRange[] {
  const out: IdRange[] = []
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f.length !== 3) continue
    const [inside, outside, count] = f.map(Number) as [number, number, number]
    if ([inside, outside, count].every(Number.isSafeInteger)) out.push({ inside, outside, count })
  }
  return out
}

const isIdentity = (m: readonly IdRange[]) => m.length === 1 && m[0]!.inside === 0 && m[0]!.outside === 0 && m[0]!.count === 4294967295

let cached: UserNamespace | null | undefined

/** The namespace's maps when this process runs in a user namespace (a rootless build's worker), else undefined. */
export function userNamespace(): UserNamespace | undefined {
  if (cached === undefined) {
    cached = null
    try {
      const uids = parseIdMap(readFileSync('/proc/self/uid_map', 'utf8'))
      const gids = parseIdMap(readFileSync('/proc/self/gid_map', 'utf8'))
      if (!isIdentity(uids) && uids.length > 0) {
        const total = (m: readonly IdRange[]) => m.reduce((n, r) => n + r.count, 0)
        cached = Object.freeze({ uids, gids, singleId: total(uids) <= 1 && total(gids) <= 1 })
      }
    } catch {
      // not Linux: no user namespaces
    }
  }
  return cached ?? undefined
}

/** Whether `id` exists inside the namespace (always true outside one). */
export function isMapped(id: number, maps: readonly IdRange[] | undefined): boolean {
  if (!maps) return true
  return maps.some((r) => id >= r.inside && id < r.inside + r.count)
}

/** The highest id the namespace maps (container ids 0 … this), for messages. */
export function highestMapped(maps: readonly IdRange[]): number {
  return Math.max(-1, ...maps.map((r) => r.inside + r.count - 1))
}
