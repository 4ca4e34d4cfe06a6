#!/usr/bin/env node
// The CLI runs from dist/ (one bundle: ~0.1 s to start) whenever dist/ is at least as new as every
// file it is built from. In a source checkout whose dist/ is missing or older than an edit, it runs
// from src/ through tsx instead (0.4-0.8 s to start), so it is never stale; `npm run build` (also run
// by the test setup and the benches) brings dist/ back. An installed package has only dist/.
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'
import { distIsFresh } from './dist-freshness.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
// IMAGESMITH_CLI_FROM=src runs the sources even when dist/ is fresh (debugging with source positions).
if (process.env.IMAGESMITH_CLI_FROM !== 'src' && distIsFresh(root)) {
  await import(pathToFileURL(join(root, 'dist', 'cli.js')).href)
} else {
  const { tsImport } = await import('tsx/esm/api')
  await tsImport(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href, import.meta.url)
}
