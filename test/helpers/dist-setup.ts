/**
 * Vitest global setup: the CLI runs from dist/ when dist/ is fresh (bin/imagesmith.js), so the
 * tests rebuild it first when a source is newer. Done once here, before any test file starts a CLI
 * process: a rebuild while one runs would swap the bundle under it.
 */
import { execFileSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { distIsFresh } from '../../bin/dist-freshness.js'

export default function setup(): void {
  const root = resolve(__dirname, '../..')
  if (distIsFresh(root)) return
  execFileSync(process.execPath, [join(root, 'node_modules', 'tsup', 'dist', 'cli-default.js'), '--silent'], { cwd: root, stdio: 'inherit' })
}
