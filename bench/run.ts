/**
 * Bench runner: loads every case from bench/cases/*.ts, runs the ones named on the command line
 * (all by default) and prints one table. Exit code 1 if any row misses its target.
 * Usage: npm run bench [-- layer]
 */
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { BenchCase, BenchRow, PeerResult } from './types.js'

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

const peerTime = (r: BenchRow, name: string): number | undefined => {
  const p = r.peers?.find((x) => x.name === name)
  return p && 's' in p ? p.s : undefined
}

/** A peer target whose peer did not run cannot be judged: it neither passes nor fails the row (the peer table says why). */
function passes(r: BenchRow): boolean {
  const peersOk = (r.peerTargets ?? []).every((t) => {
    const s = peerTime(r, t.peer)
    return s === undefined || s / r.imagesmithS >= t.minSpeedup
  })
  return r.imagesmithS / r.floorS <= r.targetRatio && r.peakRssMB <= r.rssLimitMB && peersOk
}

function table(head: string[], body: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  console.log(line(head))
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const b of body) console.log(line(b))
}

/** Rows measured against peers: each peer's time and how many times faster imagesmith was (peer / imagesmith). */
function printPeerTable(rows: readonly BenchRow[]): void {
  const withPeers = rows.filter((r) => r.peers && r.peers.length > 0)
  if (withPeers.length === 0) return
  const names = [...new Set(withPeers.flatMap((r) => r.peers!.map((p) => p.name)))]
  const cell = (p: PeerResult | undefined, ours: number): [string, string] =>
    !p ? ['-', '-'] : 's' in p ? [p.s.toFixed(2), `${(p.s / ours).toFixed(2)}×`] : ['not run', '-']
  const head = ['case', 'imagesmith s', ...names.flatMap((n) => [`${n} s`, `vs ${n}`]), 'target', 'result']
  const body = withPeers.map((r) => [
    r.case,
    r.imagesmithS.toFixed(2),
    ...names.flatMap((n) => cell(r.peers!.find((p) => p.name === n), r.imagesmithS)),
    [...(r.peerTargets ?? []).map((t) => t.minSpeedup === 1 ? `≤ ${t.peer}` : `${t.minSpeedup}× faster than ${t.peer}`), `≤ ${(r.floorS * r.targetRatio).toFixed(2)} s`].join(', '),
    passes(r) ? 'pass' : 'FAIL',
  ])
  console.log('')
  table(head, body)
  for (const r of withPeers) {
    for (const p of r.peers!) {
      if ('skipped' in p) console.log(`  ${r.case}: ${p.name} not run: ${p.skipped}`)
      else console.log(`  ${r.case}: ${p.name} runs ${p.runs.map((x) => x.toFixed(2)).join(' / ')} s`)
    }
  }
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
  table(head, body)
  for (const r of rows) for (const n of r.notes ?? []) console.log(`  ${r.case}: ${n}`)
  printPeerTable(rows)
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
