/**
 * The solver/cache case, whole process (the CLI, as a user runs it): a 10k-file / 200 MB context,
 * `COPY ctx /app` + `RUN ls -R /app | wc -l` on the busybox base, to a gzip OCI tarball. Rows: cold
 * build, no-op rebuild to the same tarball, one context file changed, and four independent
 * `RUN sleep 2` stages. Floors: the stat-walk of the context (limits.md) for the no-op rebuild, 2 s for
 * the sleeps (one sleep), `tar | pigz` of the context for cold and one-file builds. Medians of 3 runs.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchCase, BenchRow } from '../types.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const RUNS = 3
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function busyboxArchive(): string {
  const dir = process.env['IMAGESMITH_TESTBED'] || join(homedir(), '.cache', 'imagesmith-testbed')
  const p = join(dir, 'busybox.tar')
  if (!existsSync(p)) throw new Error(`bench copy-run: no busybox base at ${p} (run scripts/provision.sh)`)
  return p
}

/** 10,000 files of 1–40 KiB in 100 dirs, half text-like, half random: ~200 MB. */
function makeContext(dir: string): void {
  let seed = 1
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0)
  for (let d = 0; d < 100; d++) {
    mkdirSync(join(dir, `d${d}`), { recursive: true })
    for (let f = 0; f < 100; f++) {
      const size = 1024 + (rnd() % (39 * 1024)) + 1
      const buf = Buffer.alloc(size)
      if (f % 2 === 0) for (let i = 0; i < size; i += 4) buf.writeUInt32LE(rnd(), Math.min(i, size - 4))
      else buf.fill(`line ${d} ${f} lorem ipsum dolor sit amet\n`)
      writeFileSync(join(dir, `d${d}`, `f${f}.dat`), buf)
    }
  }
}

interface Sample { s: number; rssMB: number }

function cli(args: string[], cwd: string): Sample {
  const t0 = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, join(repo, 'bin', 'imagesmith.js'), ...args], { cwd, encoding: 'utf8' })
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`imagesmith ${args.join(' ')} failed: ${r.stderr}`)
  return { s, rssMB: Number(r.stderr.trim().split('\n').pop()) / 1024 }
}

function statWalk(dir: string): number {
  const t0 = process.hrtime.bigint()
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e)
      if (lstatSync(p).isDirectory()) walk(p)
    }
  }
  walk(dir)
  return Number(process.hrtime.bigint() - t0) / 1e9
}

function tarPigz(dir: string, out: string): number {
  const t0 = process.hrtime.bigint()
  execFileSync('bash', ['-c', `tar -C ${dir} --sort=name -cf - . | tee >(sha256sum >/dev/null) | pigz -p2 -6 | sha256sum > /dev/null; : > ${out}`])
  return Number(process.hrtime.bigint() - t0) / 1e9
}

const copyRun: BenchCase = {
  name: 'copy-run',
  async run(): Promise<readonly BenchRow[]> {
    const work = mkdtempSync(join(tmpdir(), 'ism-bench-copyrun-'))
    try {
      const ctx = join(work, 'ctx')
      makeContext(ctx)
      const base = busyboxArchive()
      const lib = JSON.stringify(join(repo, 'src', 'index.ts'))
      writeFileSync(join(work, 'build.ts'), `import { image } from ${lib}\n` +
        `export default image().from(${JSON.stringify(`oci-archive:${base}`)}).copy('.', '/app').run('ls -R /app | wc -l')\n`)
      writeFileSync(join(work, 'sleep.ts'), `import { image } from ${lib}\n` +
        `const base = image().from(${JSON.stringify(`oci-archive:${base}`)})\n` +
        `let out = base\nfor (const n of [1, 2, 3, 4]) out = out.copy('/s' + n, '/s' + n, { from: base.run('sleep 2; echo ' + n + ' > /s' + n) })\n` +
        `export default out\n`)
      const out = join(work, 'out.tar')
      const build = (store: string, extra: string[] = [], file = 'build.ts') =>
        cli(['build', join(work, file), '--context', ctx, '--cache-dir', store, '-o', `type=oci,dest=${out}`, ...extra], work)

      const cold: Sample[] = []
      const noop: Sample[] = []
      const oneFile: Sample[] = []
      const sleeps: Sample[] = []
      for (let i = 0; i < RUNS; i++) {
        const store = join(work, `store-${i}`)
        cold.push(build(store))
        noop.push(build(store))
        writeFileSync(join(ctx, 'd7', 'f7.dat'), `changed ${i}\n`)
        oneFile.push(build(store))
        sleeps.push(build(join(work, `sleep-store-${i}`), [], 'sleep.ts'))
        rmSync(store, { recursive: true, force: true })
      }
      const walkS = median(Array.from({ length: RUNS }, () => statWalk(ctx)))
      const pigzS = median(Array.from({ length: RUNS }, () => tarPigz(ctx, join(work, 'pigz.out'))))
      const row = (name: string, xs: Sample[], floorS: number, targetRatio: number, note: string): BenchRow => ({
        case: `copy-run: ${name}`,
        imagesmithS: median(xs.map((x) => x.s)),
        floorS,
        targetRatio,
        peakRssMB: Math.max(...xs.map((x) => x.rssMB)),
        rssLimitMB: 200,
        notes: [`${note}; runs ${xs.map((x) => x.s.toFixed(2)).join(' / ')} s`],
      })
      return [
        row('cold', cold, pigzS, 2.5, 'floor: tar --sort=name | pigz -p2 -6 with both sha256s'),
        row('no-op rebuild', noop, walkS, 0.5 / walkS, `floor: stat walk of the context; target: under 0.5 s whole process`),
        row('one file changed', oneFile, pigzS, 3, 'floor: tar | pigz of the context'),
        row('4 × RUN sleep 2', sleeps, 2, 1.5, 'floor: one sleep 2; target: under 3 s whole process'),
      ]
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  },
}

export default copyRun
