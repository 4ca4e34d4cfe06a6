/**
 * A build's processes, found from the one a test started: its descendants, and whatever lives in the
 * user and mount namespaces they made (never host-wide counts: other suites run at the same time).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/** Children of process `pid` (from /proc/<pid>/task/<tid>/children). */
export function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    )
  } catch {
    return []
  }
}

/** What the kill test needs to know of a process; undefined once it is gone (zombies count as gone). */
export interface ProcInfo {
  readonly pid: number
  /** Field 22 of /proc/PID/stat: with the pid, tells a process from a later one reusing its pid. */
  readonly startTime: string
  readonly uid: number
  readonly userNs: string
  readonly mountNs: string
  readonly argv: readonly string[]
}

export function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (after[0] === 'Z' || after[0] === 'X') return undefined
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? -1)
    return {
      pid,
      startTime: after[19] ?? '',
      uid,
      userNs: readlinkSync(`/proc/${pid}/ns/user`),
      mountNs: readlinkSync(`/proc/${pid}/ns/mnt`),
      argv: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean),
    }
  } catch {
    return undefined
  }
}

/** Still the same live process as `p` (not gone, not a new one on a reused pid). */
export const stillAlive = (p: ProcInfo): boolean => procInfo(p.pid)?.startTime === p.startTime

/** Live processes whose user or mount namespace is one of `namespaces` (`user:[…]` / `mnt:[…]` links). */
export function processesInNamespaces(namespaces: ReadonlySet<string>): ProcInfo[] {
  const out: ProcInfo[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const p = procInfo(Number(name))
    if (p !== undefined && (namespaces.has(p.userNs) || namespaces.has(p.mountNs))) out.push(p)
  }
  return out
}

/** Every descendant of `pid`, breadth first. */
export function descendants(pid: number): number[] {
  const out: number[] = []
  const queue = childPids(pid)
  while (queue.length > 0) {
    const p = queue.shift()!
    out.push(p)
    queue.push(...childPids(p))
  }
  return out
}
