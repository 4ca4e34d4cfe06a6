/**
 * Facts for suites that run both as root and as the rootless test user (rootless-run-suites.test.ts
 * reruns the RUN suites as `imagesmith-rootless`, in its user namespace and through build()).
 */
import { existsSync, readFileSync } from 'node:fs'

/**
 * True when this process runs in a user namespace other than the host's: root here is a plain user
 * outside (the RUN suites rerun as the test user). Tests that need the host's root for something
 * outside the build (a privileged port on the host's network, podman's root storage) skip on it.
 */
export function inUserNamespace(): boolean {
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/)
    return !(map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295')
  } catch {
    return false
  }
}

/**
 * Whether this non-root process can build with RUN steps rootless: a subordinate range for it in
 * /etc/subuid and /etc/subgid and newuidmap installed. Suites gated on root run then, as the library
 * starts its own user-namespace worker.
 */
export function canBuildRootless(): boolean {
  const uid = process.getuid?.()
  if (uid === undefined || uid === 0) return false
  const name = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[2] === String(uid))?.split(':')[0]
  const has = (file: string) => {
    try {
      return readFileSync(file, 'utf8').split('\n').some((l) => l.startsWith(`${name}:`) || l.startsWith(`${uid}:`))
    } catch {
      return false
    }
  }
  return name !== undefined && has('/etc/subuid') && has('/etc/subgid') && ['/usr/bin/newuidmap', '/bin/newuidmap'].some((p) => existsSync(p))
}

/**
 * Every capability a build can hand an insecure RUN, as /proc/PID/status prints a set: this process's
 * bounding set, or, for a plain user's build, every capability the kernel has (its worker is root of
 * a fresh user namespace, whose bounding set starts full; they count inside that namespace only).
 */
export function grantableCaps(): string {
  const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!
  if (process.getuid?.() === 0) return bnd
  const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'))
  return ((1n << BigInt(last + 1)) - 1n).toString(16).padStart(bnd.length, '0')
}

/** A line the build adds to a rootless RUN's output to say what a user namespace cannot apply. */
export const stripRootlessNotes = (out: string): string => out.replace(/^imagesmith: rootless build: .*\n/gm, '')
