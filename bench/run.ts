/**
 * Bench runner: loads every case from bench/cases/*.ts, runs the ones named on the command line
 * (all by default) and prints one table. Exit code 1 if any row misses its target.
 * Usage: npm run bench [-- layer]
 */
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { BenchCase, BenchRow } from './types.js'

const casesDir = join(dirname(fileURLToPath(import.meta.url)), 'cases')

async function loadCases(): Promise<BenchCase[]> {
  const files = readdirSync(casesDir).filter((f) => f.endsWith('.ts')).sort()
  const out: BenchCase[] = []
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(casesDir, f)).href)) as { default?: BenchCase }
    if (!mod.default || typeof mod.default.run !== 'function') throw new Error(`bench/cases/${f} must default-export a BenchCase`)
    out.push(mod.default)
  }
  return out
}

function passes(r: BenchRow): boolean {
  return r.imagesmithS / r.floorS <= r.targetRatio && r.peakRssMB <= r.rssLimitMB
}

function printTable(rows: readonly BenchRow[]): void {
  const head = ['case', 'imagesmith s', 'floor s', 'ratio', 'target ratio', 'peak RSS MB', 'RSS limit MB', 'result']
  const body = rows.map((r) => [
    r.case,
    r.imagesmithS.toFixed(2),
    r.floorS.toFixed(2),
    (r.imagesmithS / r.floorS).toFixed(2),
    r.targetRatio.toFixed(2),
    r.peakRssMB.toFixed(0),
    r.rssLimitMB.toFixed(0),
    passes(r) ? 'pass' : 'FAIL',
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  console.log(line(head))
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const b of body) console.log(line(b))
  for (const r of rows) for (const n of r.notes ?? []) console.log(`  ${r.case}: ${n}`)
}

const wanted = process.argv.slice(2)
const cases = (await loadCases()).filter((c) => wanted.length === 0 || wanted.includes(c.name))
if (cases.length === 0) {
  console.error(`no bench case matches ${wanted.join(', ')}`)
  process.exit(2)
}
const rows: BenchRow[] = []
for (const c of cases) {
  console.error(`[bench] ${c.name} …`)
  rows.push(...(await c.run()))
}
printTable(rows)
process.exitCode = rows.every(passes) ? 0 : 1
