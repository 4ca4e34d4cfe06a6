/**
 * Path handling inside a container rootfs seen from the host, on top of the one resolver
 * (util/resolve-in-root.ts): symlinks are followed the way the container would follow them, so an
 * image can never make the builder touch a host path outside its rootfs.
 */
import { chownSync, lstatSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { resolveInRoot } from '../util/resolve-in-root.js'

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.')
}

/** The host path of container path `path` inside `root`, symlinks resolved inside the root. */
export function hostPath(root: string, path: string, followLast = true): string {
  return resolveInRoot(root, path, { followLast }).host
}

/**
 * The components of `path` (resolved inside `root`) that do not exist yet, top first, as container
 * paths: what a runtime or a mkdir would create there.
 */
export function missingPaths(root: string, path: string): string[] {
  const resolved = components(resolveInRoot(root, path).rel)
  const out: string[] = []
  for (let i = 1; i <= resolved.length; i++) {
    const p = `/${resolved.slice(0, i).join('/')}`
    if (out.length > 0) {
      out.push(p)
      continue
    }
    try {
      lstatSync(join(root, p))
    } catch {
      out.push(p)
    }
  }
  return out
}

/** `mkdir -p` inside `root`, new dirs owned by uid:gid; returns the container paths it created. */
export function mkdirAllInRoot(root: string, path: string, uid: number, gid: number, mode = 0o755): string[] {
  const created = missingPaths(root, path)
  for (const p of created) {
    mkdirSync(join(root, p), { mode })
    chownSync(join(root, p), uid, gid)
  }
  return created
}
