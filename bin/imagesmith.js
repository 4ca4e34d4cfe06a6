#!/usr/bin/env node
// In a source checkout (src/ present) the CLI runs from source through tsx, so it is never stale;
// an installed package has only dist/.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src', 'cli', 'main.ts')
if (existsSync(src)) {
  const { tsImport } = await import('tsx/esm/api')
  await tsImport(pathToFileURL(src).href, import.meta.url)
} else {
  await import(pathToFileURL(join(root, 'dist', 'cli.js')).href)
}
