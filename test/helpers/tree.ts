import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Every node under `dir`, by path: type, mode (setuid and the like included), owner, mtime (not for
 * symlinks), and a file's size, first bytes and link count or a symlink's target. Two trees that
 * are equal here hold the same files as an image sees them.
 */
export function treeNodes(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name
      const p = join(dir, r)
      const st = lstatSync(p)
      const what = st.isSymbolicLink() ? `link:${readlinkSync(p)}` : st.isFile() ? `file:${st.size}:${readFileSync(p).toString('base64').slice(0, 64)}:nlink${st.nlink}` : 'dir'
      out[r] = `${what} mode:${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} mtime:${st.isSymbolicLink() ? '-' : Math.floor(st.mtimeMs / 1000)}`
      if (st.isDirectory()) walk(r)
    }
  }
  walk('')
  return out
}
