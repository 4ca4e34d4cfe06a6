#!/usr/bin/env node
// The CLI runs from dist/ (one bundle: ~0.1 s to start) whenever dist/ is at least as new as every
// file it is built from. In a source checkout whose dist/ is missing or older than an edit, it runs
// from src/ through tsx instead (0.4-0.8 s to start), so it is never stale; `npm run build` (also run
// by the test setup, the benches and npm's `prepare`) brings dist/ back. An installed package has
// only dist/: it always runs that.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'
import { distIsFresh } from './dist-freshness.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const main = join(root, 'src', 'cli', 'main.ts')
const cli = join(root, 'dist', 'cli.js')
// IMAGESMITH_CLI_FROM=src runs the sources even when dist/ is fresh (debugging with source positions).
const fromSource = existsSync(main) && (process.env.IMAGESMITH_CLI_FROM === 'src' || !distIsFresh(root))
if (fromSource) {
  const { tsImport } = await import('tsx/esm/api')
  await tsImport(pathToFileURL(main).href, import.meta.url)
} else if (existsSync(cli)) {
  // A build's context listing starts before the CLI bundle (~1 MB) is compiled: find runs beside it.
  const early = join(root, 'dist', 'early-probe.js')
  if (process.argv[2] === 'build' && existsSync(early)) (await import(pathToFileURL(early).href)).probeEarly(process.argv.slice(2))
  await import(pathToFileURL(cli).href)
} else {
  process.stderr.write(`imagesmith: ${cli} is missing: this copy of the package was packed without its build (\`npm run build\` makes dist/)\n`)
  process.exitCode = 1
}
