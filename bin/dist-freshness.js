// Whether dist/ was built from the sources as they are now: dist/cli.js at least as new as every file
// and directory under src/ (a deleted file changes its directory's mtime) and the build's configs.
// Shared by the CLI launcher and the test setup, which rebuilds dist/ when this says no.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** @param {string} root the package root @returns {boolean} */
export function distIsFresh(root) {
  const cli = join(root, 'dist', 'cli.js')
  if (!existsSync(cli)) return false
  const src = join(root, 'src')
  if (!existsSync(src)) return true
  const built = statSync(cli).mtimeMs
  let stale = false
  const see = (p) => {
    if (statSync(p).mtimeMs > built) stale = true
  }
  for (const f of ['package.json', 'tsup.config.ts', 'tsconfig.json']) if (existsSync(join(root, f))) see(join(root, f))
  const walk = (dir) => {
    see(dir)
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (stale) return
      if (e.isDirectory()) walk(join(dir, e.name))
      else see(join(dir, e.name))
    }
  }
  walk(src)
  return !stale
}
