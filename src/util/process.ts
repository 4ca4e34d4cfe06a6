import { readFileSync } from 'node:fs'

/**
 * Whether a process exists; temp files and locks carry their writer's pid so stale ones can be cleared.
 * A zombie counts as gone: a SIGKILLed build whose parent (or a container's init that reaps slowly)
 * has not collected it yet holds nothing, and its leases and temp files must not outlive it.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  return !isZombie(pid)
}

function isZombie(pid: number): boolean {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return false // no procfs (or it went away): trust kill(0)
  }
  // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  return stat[stat.lastIndexOf(')') + 2] === 'Z'
}
