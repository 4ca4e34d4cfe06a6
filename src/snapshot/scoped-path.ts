/**
 * Path handling inside a container rootfs seen from the host: symlinks are followed the way the
 * container would follow them (an absolute link target starts again at the rootfs, `..` stops at
 * it), so an image can never make the builder touch a host path outside its rootfs.
 */
import { chownSync, lstatSync, mkdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'

const MAX_LINKS = 255

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.')
}

/**
 * Resolves the container path `path` inside `root` and returns it as a container path ('/a/b').
 * Missing components are kept as written. The last component is followed only if `followLast`.
 */
export function resolveInRoot(root: string, path: string, followLast = true): string {
  const done: string[] = []
  const todo = components(path)
  let links = 0
  while (todo.length > 0) {
    const c = todo.shift()!
    if (c === '..') {
      done.pop()
      continue
    }
    const host = join(root, ...done, c)
    let target: string | undefined
    if (todo.length > 0 || followLast) {
      try {
        if (lstatSync(host).isSymbolicLink()) target = readlinkSync(host)
      } catch {
        // missing: keep the rest literally
      }
    }
    if (target === undefined) {
      done.push(c)
      continue
    }
    if (++links > MAX_LINKS) throw Object.assign(new Error(`too many levels of symbolic links resolving ${path}`), { code: 'ELOOP' })
    if (target.startsWith('/')) done.length = 0
    todo.unshift(...components(target))
  }
  return `/${done.join('/')}`
}

/** The host path of container path `path` inside `root`, symlinks resolved inside the root. */
export function hostPath(root: string, path: string, followLast = true): string {
  return join(root, resolveInRoot(root, path, followLast))
}

/**
 * The components of `path` (resolved inside `root`) that do not exist yet, top first, as container
 * paths: what a runtime or a mkdir would create there.
 */
export function missingPaths(root: string, path: string): string[] {
  const resolved = components(resolveInRoot(root, path))
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
