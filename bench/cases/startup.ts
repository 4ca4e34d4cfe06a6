/**
 * Startup case: what `import 'imagesmith'` costs, with the code generator (ts-morph and the
 * TypeScript compiler) kept in its own entry point. Each import runs in a fresh node process and
 * loads the built package (dist/, as users get it; bench.sh rebuilds it when stale); the floor is the
 * same process importing nothing. Median of 5 runs. The codegen entry's cost is shown in the notes, for
 * contrast. A second row: `imagesmith --version` as users run it (bin/ → dist/), against `node -e 0`.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchCase, BenchRow } from '../types.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const RUNS = 5

interface Sample { s: number; rssMB: number; tsMorph: boolean }

/** One fresh process importing `entry` (or nothing): wall time and peak RSS from GNU time. */
function sample(entry: string | undefined, dir: string): Sample {
  const script = join(dir, 'probe.mjs')
  writeFileSync(script, entry === undefined ? '' : `import { createRequire } from 'node:module'\nawait import(${JSON.stringify(entry)})\n` +
    `const r = createRequire(import.meta.url)\nprocess.stdout.write(String(Object.keys(r.cache).some((k) => k.includes('/ts-morph/'))))\n`)
  const t0 = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, script], { cwd: repo, encoding: 'utf8' })
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`startup probe failed: ${r.stderr}`)
  return { s, rssMB: Number(r.stderr.trim().split('\n').pop()) / 1024, tsMorph: r.stdout === 'true' }
}

/** A fresh node process running `args`: wall time and peak RSS. */
function timed(args: string[]): { s: number; rssMB: number } {
  const t0 = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, ...args], { cwd: repo, encoding: 'utf8' })
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${r.stderr}`)
  return { s, rssMB: Number(r.stderr.trim().split('\n').pop()) / 1024 }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const startup: BenchCase = {
  name: 'startup',
  async run(): Promise<readonly BenchRow[]> {
    const dir = mkdtempSync(join(tmpdir(), 'ism-bench-startup-'))
    try {
      const runs = (entry?: string) => Array.from({ length: RUNS }, () => sample(entry, dir))
      const floor = runs()
      const lib = runs(join(repo, 'dist', 'index.js'))
      const gen = runs(join(repo, 'dist', 'codegen.js'))
      const cli = Array.from({ length: RUNS }, () => timed([join(repo, 'bin', 'imagesmith.js'), '--version']))
      const bare = Array.from({ length: RUNS }, () => timed(['-e', '0']))
      return [{
        case: 'startup: import imagesmith',
        imagesmithS: median(lib.map((x) => x.s)),
        floorS: median(floor.map((x) => x.s)),
        targetRatio: 4,
        peakRssMB: Math.max(...lib.map((x) => x.rssMB)),
        rssLimitMB: 150,
        notes: [
          `floor: node importing nothing, ${median(floor.map((x) => x.rssMB)).toFixed(0)} MB; ts-morph loaded by the library: ${lib.some((x) => x.tsMorph)}`,
          `imagesmith/codegen (ts-morph): ${median(gen.map((x) => x.s)).toFixed(2)} s, ${median(gen.map((x) => x.rssMB)).toFixed(0)} MB peak RSS`,
        ],
      }, {
        case: 'startup: imagesmith --version (bin → dist)',
        imagesmithS: median(cli.map((x) => x.s)),
        floorS: median(bare.map((x) => x.s)),
        targetRatio: 0.25 / median(bare.map((x) => x.s)),
        peakRssMB: Math.max(...cli.map((x) => x.rssMB)),
        rssLimitMB: 150,
        notes: ['floor: node -e 0; target: 0.25 s whole process (the build-script start is in copy-run)'],
      }]
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },
}

export default startup
