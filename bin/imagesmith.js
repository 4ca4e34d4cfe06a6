#!/usr/bin/env node
// Runs the compiled CLI (npm run build); from a source checkout without dist/, falls back to tsx.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist', 'cli.js')
if (existsSync(dist)) {
  await import(dist)
} else {
  const { tsImport } = await import('tsx/esm/api')
  await tsImport(join(root, 'src', 'cli', 'main.ts'), import.meta.url)
}
