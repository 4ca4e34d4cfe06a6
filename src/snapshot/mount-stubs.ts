/**
 * Mount points the runtime creates for its own mounts (/proc, /dev, /sys, /etc/resolv.conf, …,
 * RUN --mount targets) are recorded before the run ({@link recordStubs}) and removed afterwards
 * ({@link removeStubs}) when they are still empty, as BuildKit's MountStubsCleaner does.
 */
import { lstatSync, readdirSync, rmdirSync, unlinkSync, utimesSync, type Stats } from 'node:fs'
import { dirname, join } from 'node:path'
import { missingPaths } from './scoped-path.js'

export interface Stubs {
  /** Container paths that did not exist before the run, top first. */
  readonly paths: readonly string[]
  /** mtimes (ms) of the existing parents of those paths, before the run. */
  readonly parents: ReadonlyMap<string, { atimeMs: number; mtimeMs: number }>
}

/**
 * Records which components of the mount targets `targets` (container paths) are missing from the
 * rootfs at `root` before the run: the runtime will create them as mount points.
 */
export function recordStubs(root: string, targets: readonly string[]): Stubs {
  const paths: string[] = []
  const parents = new Map<string, { atimeMs: number; mtimeMs: number }>()
  for (const t of targets) {
    const missing = missingPaths(root, t)
    if (missing.length === 0) continue
    for (const p of missing) if (!paths.includes(p)) paths.push(p)
    const parent = dirname(missing[0]!)
    if (!parents.has(parent)) {
      try {
        const st = lstatSync(join(root, parent))
        parents.set(parent, { atimeMs: st.atimeMs, mtimeMs: st.mtimeMs })
      } catch {
        // parent vanished: nothing to restore
      }
    }
  }
  return { paths, parents }
}

/**
 * After the run, removes the recorded mount points from `dir` (the upper dir, or the copied rootfs)
 * where they are still empty files or empty dirs, deepest first, and gives their parents back the
 * mtime they had before when nothing else changed in them (`isUntouched`; for an upper dir: it is
 * empty).
 */
export function removeStubs(dir: string, stubs: Stubs, isUntouched: (hostDir: string) => boolean = (d) => readdirSync(d).length === 0): void {
  for (const p of [...stubs.paths].sort((a, b) => b.length - a.length)) {
    const host = join(dir, p)
    let st: Stats
    try {
      st = lstatSync(host)
    } catch {
      continue
    }
    try {
      if (st.isDirectory()) {
        if (readdirSync(host).length === 0) rmdirSync(host)
      } else if (st.isFile() && st.size === 0) unlinkSync(host)
    } catch {
      // kept: the step put something there
    }
  }
  for (const [parent, t] of stubs.parents) {
    const host = join(dir, parent)
    try {
      if (lstatSync(host).isDirectory() && isUntouched(host)) utimesSync(host, t.atimeMs / 1000, t.mtimeMs / 1000)
    } catch {
      // parent not in this dir: nothing to restore
    }
  }
}
