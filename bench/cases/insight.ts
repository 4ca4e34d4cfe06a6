/**
 * Layer insight case, whole process (the CLI from dist/): the copy-run context (10k files, ~200 MB)
 * `COPY . /app` + `RUN rm -rf /app/d1` on busybox, to a gzip OCI tarball. Rows: a cold build with
 * `--budget size=1GB,wasted=1GB,layers=30` against the same cold build without (target: < 3% more);
 * `inspect --layers` of that tarball against reading its layers once (tar -xO | gzip -dc); a zstd
 * export (warm store: the layers recompressed at export) against a gzip export of the same image,
 * with both archive sizes. Medians of 3 runs, the two builds interleaved.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchCase, BenchRow } from '../types.js'
import { makeContext } from './copy-run.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const RUNS = 3
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

interface Sample { s: number; rssMB: number; stdout: string }

function cli(args: string[], cwd: string): Sample {
  const t0 = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, join(repo, 'bin', 'imagesmith.js'), ...args], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 })
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`imagesmith ${args.join(' ')} failed: ${r.stderr}`)
  return { s, rssMB: Number(r.stderr.trim().split('\n').pop()) / 1024, stdout: r.stdout }
}

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t0) / 1e9
}

const insight: BenchCase = {
  name: 'insight',
  async run(): Promise<readonly BenchRow[]> {
    const work = mkdtempSync(join(tmpdir(), 'ism-bench-insight-'))
    try {
      const ctx = join(work, 'ctx')
      makeContext(ctx)
      const base = join(process.env['IMAGESMITH_TESTBED'] || join(homedir(), '.cache', 'imagesmith-testbed'), 'busybox.tar')
      if (!existsSync(base)) throw new Error(`bench insight: no busybox base at ${base} (run scripts/provision.sh)`)
      writeFileSync(join(work, 'build.ts'), `import { image } from 'imagesmith'\n` +
        `export default image().from(${JSON.stringify(`oci-archive:${base}`)}).copy('.', '/app').run('rm -rf /app/d1')\n`)
      const out = join(work, 'out.tar')
      const build = (store: string, extra: string[], dest = out): Sample => {
        execFileSync('sync')
        return cli(['build', join(work, 'build.ts'), '--context', ctx, '--cache-dir', store, '-o', `type=oci,dest=${dest}`, '--progress', 'quiet', ...extra], work)
      }
      const plain: Sample[] = []
      const budgeted: Sample[] = []
      for (let i = 0; i < RUNS; i++) {
        for (const [list, extra] of (i % 2 === 0 ? [[plain, []], [budgeted, ['--budget', 'size=1GB,wasted=1GB,layers=30']]] : [[budgeted, ['--budget', 'size=1GB,wasted=1GB,layers=30']], [plain, []]]) as [Sample[], string[]][]) {
          const store = join(work, `store-${i}-${list === plain ? 'plain' : 'budget'}`)
          list.push(build(store, extra))
          if (i < RUNS - 1) rmSync(store, { recursive: true, force: true })
        }
      }
      const warm = join(work, `store-${RUNS - 1}-plain`)
      // inspect --layers against one read of every layer (the archive's blobs, gunzipped).
      const index = JSON.parse(execFileSync('tar', ['-xOf', out, 'index.json'], { encoding: 'utf8' })) as { manifests: { digest: string }[] }
      const manifest = JSON.parse(execFileSync('tar', ['-xOf', out, `blobs/sha256/${index.manifests[0]!.digest.slice(7)}`], { encoding: 'utf8' })) as { layers: { digest: string }[] }
      const readOnce = () => timed(() => execFileSync('bash', ['-c', manifest.layers.map((l) => `tar -xOf ${out} blobs/sha256/${l.digest.slice(7)} | gzip -dc > /dev/null`).join(' && ')]))
      const inspects: Sample[] = []
      const reads: number[] = []
      for (let i = 0; i < RUNS; i++) {
        inspects.push(cli(['inspect', out, '--layers', '--format', 'json'], work))
        reads.push(readOnce())
      }
      const report = JSON.parse(inspects[0]!.stdout) as { wastedBytes: number; dive: { efficiency: number } }[]
      // zstd against gzip, warm store: the export alone differs.
      const zOut = join(work, 'out-zstd.tar')
      const gzipExports: Sample[] = []
      const zstdExports: Sample[] = []
      for (let i = 0; i < RUNS; i++) {
        gzipExports.push(build(warm, [], join(work, 'out-gzip.tar')))
        zstdExports.push(build(warm, [], `${zOut},compression=zstd,compression-level=3`))
      }
      const mb = (p: string) => (statSync(p).size / 1e6).toFixed(1)
      const row = (name: string, xs: Sample[], floorS: number, targetRatio: number, note: string): BenchRow => ({
        case: `insight: ${name}`,
        imagesmithS: median(xs.map((x) => x.s)),
        floorS,
        targetRatio,
        peakRssMB: Math.max(...xs.map((x) => x.rssMB)),
        rssLimitMB: 200,
        notes: [`${note}; runs ${xs.map((x) => x.s.toFixed(2)).join(' / ')} s`],
      })
      return [
        row('cold build with --budget', budgeted, median(plain.map((x) => x.s)), 1.03, `floor: the same cold build without --budget (${plain.map((x) => x.s.toFixed(2)).join(' / ')} s); target: < 3% more`),
        row('inspect --layers', inspects, median(reads), 2, `floor: each layer read once (tar -xO | gzip -dc); wasted ${report[0]!.wastedBytes} bytes, efficiency ${report[0]!.dive.efficiency.toFixed(4)}`),
        row('zstd export (warm store)', zstdExports, median(gzipExports.map((x) => x.s)), 1.5, `floor: the gzip export of the same image, warm store; archive ${mb(zOut)} MB zstd vs ${mb(join(work, 'out-gzip.tar'))} MB gzip`),
      ]
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  },
}

export default insight
