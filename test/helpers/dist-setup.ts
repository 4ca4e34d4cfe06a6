/**
 * Vitest global setup: the CLI runs from dist/ when dist/ is fresh (bin/imagesmith.js), so the
 * tests rebuild it first when a source is newer. Done once here, before any test file starts a CLI
 * process: a rebuild while one runs would swap the bundle under it. Without type declarations: the
 * bundle is what runs (1.5 s instead of 7 s), and a type error mid-edit does not stop the tests.
 */
import { execFileSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { distIsFresh } from '../../bin/dist-freshness.js'

export default function setup(): void {
  const root = resolve(__dirname, '../..')
  if (distIsFresh(root)) return
  execFileSync(process.execPath, [join(root, 'node_modules', 'tsup', 'dist', 'cli-default.js'), '--no-dts', '--silent'], { cwd: root, stdio: 'inherit' })
}
