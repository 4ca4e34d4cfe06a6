/**
 * The files and directories the runtime creates as mount points for /etc/resolv.conf, /etc/hosts,
 * /etc/hostname and the RUN --mount targets are recorded before the run ({@link recordStubs}) and
 * removed afterwards ({@link removeStubs}) when still empty, as buildah 1.28 and docker 20.10's
 * BuildKit (0.8, MountStubsCleaner) leave a RUN layer: only the mount point itself goes. The
 * parents made for it stay, and so do /proc, /dev and /sys (an empty /etc, /dev, /proc, /sys in a
 * RUN on a bare rootfs; an /etc with a new mtime where the mount point was made in an existing
 * one). BuildKit 0.12 and later also remove those parents and give /etc back its mtime; the two
 * peers agree on keeping them.
 */
import { lstatSync, readdirSync, rmdirSync, unlinkSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { missingPaths } from './scoped-path.js'

export interface Stubs {
  /** Container paths of the mount points that did not exist before the run. */
  readonly paths: readonly string[]
}

/**
 * Records which of the mount targets `targets` (container paths) are missing from the rootfs at
 * `root` before the run: the runtime will create them as mount points.
 */
export function recordStubs(root: string, targets: readonly string[]): Stubs {
  const paths: string[] = []
  for (const t of targets) {
    const missing = missingPaths(root, t)
    const leaf = missing[missing.length - 1]
    if (leaf !== undefined && !paths.includes(leaf)) paths.push(leaf)
  }
  return { paths }
}

/**
 * After the run, removes the recorded mount points from `dir` (the upper dir, or the copied rootfs)
 * where they are still an empty file or an empty directory, deepest first (one target may be
 * another's parent).
 */
export function removeStubs(dir: string, stubs: Stubs): void {
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
}
