/**
 * The source layout README.md's table gives: each folder of src/ imports (at run time) only folders
 * below it in the table, so no two folders import each other and a seam stays a seam.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../..')
const src = join(root, 'src')

/** Folder names in table order, top to bottom. */
function tableOrder(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Source layout'))
  return [...section.matchAll(/^\| `([a-z-]+)\/` \|/gm)].map((m) => m[1]!)
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Relative imports and re-exports that load a module at run time (`import type` and all-type lists excluded). */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(type\s+)?([^'";]*?)\s*from\s+'(\.[^']+)'/gm)) {
    const names = m[2]!.trim()
    const allTypes = /^\{[^}]*\}$/.test(names) && names.slice(1, -1).split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '))
    if (m[1] || allTypes) continue
    out.push(resolve(dirname(file), m[3]!))
  }
  return out
}

const folderOf = (path: string): string | undefined => {
  const parts = relative(src, path).split('/')
  return parts.length > 1 ? parts[0] : undefined
}

describe('source layout', () => {
  it('names every folder of src/ in the README table once', () => {
    const order = tableOrder()
    const folders = readdirSync(src).filter((n) => statSync(join(src, n)).isDirectory())
    expect([...order].sort()).toEqual([...folders].sort())
  })

  it('has every folder import only folders below it in the table', () => {
    const order = tableOrder()
    const rank = new Map(order.map((f, i) => [f, i]))
    const upward: string[] = []
    for (const file of sourceFiles(src)) {
      const from = folderOf(file)
      if (from === undefined) continue
      for (const target of runtimeImports(file)) {
        const to = folderOf(target)
        if (to === undefined || to === from) continue
        if (rank.get(to)! <= rank.get(from)!) upward.push(`${relative(src, file)} -> ${relative(src, target)}`)
      }
    }
    expect(upward).toEqual([])
  })
})
