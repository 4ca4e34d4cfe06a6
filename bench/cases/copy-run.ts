/**
 * The solver/cache case, whole process (the CLI, as a user runs it, from dist/): a 10k-file / 200 MB
 * context, `COPY ctx /app` + `RUN ls -R /app | wc -l` on the busybox base, to a gzip OCI tarball.
 * Rows: cold build, no-op rebuild to the same tarball, one context file changed, four independent
 * `RUN sleep 2` stages, and CLI start (a no-op build of a one-file script); plus the COPY step's own
 * time in the no-op rebuild (its cache check) against the stat walk of the same tree. buildah and BuildKit build
 * the same Dockerfiles in the same run, interleaved with ours (bench/peers.ts). Floors: the stat walk
 * of the context (limits.md) for the no-op rebuild, 2 s (one sleep) for the sleeps, `tar | pigz` of
 * the context for cold and one-file builds, `node -e 0` for the start. Medians of 3 runs.
 */
import { createCipheriv } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildahPeer, buildkitPeer, version, writeDockerfiles, type Peer, type PeerSlot } from '../peers.js'
import type { BenchCase, BenchRow, PeerResult, PeerTarget } from '../types.js'
import { LISTING_FORMAT } from '../../src/context/tree-probe.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const RUNS = 3
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function busyboxArchive(): string {
  const dir = process.env['IMAGESMITH_TESTBED'] || join(homedir(), '.cache', 'imagesmith-testbed')
  const p = join(dir, 'busybox.tar')
  if (!existsSync(p)) throw new Error(`bench copy-run: no busybox base at ${p} (run scripts/provision.sh)`)
  return p
}

/**
 * 10,000 files of 1–40 KiB in 100 dirs, half text-like, half random: ~200 MB. The random half is an
 * AES-CTR keystream (fixed key: the same bytes every run), which no compressor shrinks; an LCG's
 * low bytes repeat every 256 words, and gzip took such a context down to 4 MB.
 */
export function makeContext(dir: string): void {
  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0))
  let seed = 1
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0)
  for (let d = 0; d < 100; d++) {
    mkdirSync(join(dir, `d${d}`), { recursive: true })
    for (let f = 0; f < 100; f++) {
      const size = 1024 + (rnd() % (39 * 1024)) + 1
      const buf = f % 2 === 0 ? keystream.update(Buffer.alloc(size)) : Buffer.alloc(size, `line ${d} ${f} lorem ipsum dolor sit amet\n`)
      writeFileSync(join(dir, `d${d}`, `f${f}.dat`), buf)
    }
  }
}

/** A timed build: wall time, peak RSS, and its CPU (user + system) and steps for telling load from work. */
interface Sample { s: number; rssMB: number; cpu?: string; steps?: string }

function cli(args: string[], cwd: string): Sample {
  const t0 = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', process.execPath, join(repo, 'bin', 'imagesmith.js'), ...args], { cwd, encoding: 'utf8' })
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`imagesmith ${args.join(' ')} failed: ${r.stderr}`)
  const [rss, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ')
  return { s, rssMB: Number(rss) / 1024, cpu: `${user}u+${sys}s` }
}

/** The build's steps that took 10 ms or more, from its metadata file: "COPY 2.93, RUN 0.37". */
function stepTimes(metadata: string): string {
  const vertices = (JSON.parse(readFileSync(metadata, 'utf8')) as { 'imagesmith.vertices': { description: string; ms: number }[] })['imagesmith.vertices']
  return vertices.filter((v) => v.ms >= 10).map((v) => `${v.description.split(' ')[0]} ${(v.ms / 1000).toFixed(2)}`).join(', ')
}

/**
 * The stat-walk floor (limits.md: readdirSync + lstatSync of every entry), timed inside a fresh node
 * process right after each no-op rebuild, so it meets the same machine load and a cold JIT as the
 * build's own walk does.
 */
function statWalk(dir: string): number {
  const script = `const { readdirSync, lstatSync } = require('node:fs'); const { join } = require('node:path');
    const t0 = process.hrtime.bigint();
    const walk = (d) => { for (const e of readdirSync(d)) { const p = join(d, e); if (lstatSync(p).isDirectory()) walk(p) } };
    walk(${JSON.stringify(dir)}); process.stdout.write(String(Number(process.hrtime.bigint() - t0) / 1e9))`
  return Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }))
}

/**
 * The context listing a rebuild's COPY checks first (context/tree-probe.ts: find in a child process,
 * started beside the CLI's own start), timed alone the same way as the stat walk.
 */
function listing(dir: string): number {
  const t0 = process.hrtime.bigint()
  execFileSync('find', ['-H', dir, '-printf', LISTING_FORMAT], { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, LC_ALL: 'C' } })
  return Number(process.hrtime.bigint() - t0) / 1e9
}

function tarPigz(dir: string, out: string): number {
  const t0 = process.hrtime.bigint()
  execFileSync('bash', ['-c', `tar -C ${dir} --sort=name -cf - . | tee >(sha256sum >/dev/null) | pigz -p2 -6 | sha256sum > /dev/null; : > ${out}`])
  return Number(process.hrtime.bigint() - t0) / 1e9
}

function nodeStart(): number {
  const t0 = process.hrtime.bigint()
  execFileSync(process.execPath, ['-e', '0'])
  return Number(process.hrtime.bigint() - t0) / 1e9
}

type RowName = 'cold' | 'noop' | 'oneFile' | 'sleeps'

/**
 * Flushes what earlier builds and resets left (dirty pages; on a filesystem mounted with `discard`,
 * the discards of a deleted store, issued at the next journal commit) before a timed build, so no
 * tool pays for the one timed before it. Every tool's build is preceded by one.
 */
function settle(): void {
  execFileSync('sync')
}

const copyRun: BenchCase = {
  name: 'copy-run',
  async run(): Promise<readonly BenchRow[]> {
    const work = mkdtempSync(join(tmpdir(), 'ism-bench-copyrun-'))
    const slots: PeerSlot[] = []
    try {
      const ctx = join(work, 'ctx')
      makeContext(ctx)
      const base = busyboxArchive()
      const from = JSON.stringify(`oci-archive:${base}`)
      writeFileSync(join(work, 'build.ts'), `import { image } from 'imagesmith'\n` +
        `export default image().from(${from}).copy('.', '/app').run('ls -R /app | wc -l').cmd(['sh'])\n`)
      writeFileSync(join(work, 'sleep.ts'), `import { image } from 'imagesmith'\n` +
        `const base = image().from(${from})\n` +
        `let out = base\nfor (const n of [1, 2, 3, 4]) out = out.copy('/s' + n, '/s' + n, { from: base.run('sleep 2; echo ' + n + ' > /s' + n) })\n` +
        `export default out\n`)
      mkdirSync(join(work, 'small'))
      writeFileSync(join(work, 'small', 'hello.txt'), 'hi\n')
      writeFileSync(join(work, 'start.ts'), `import { image } from 'imagesmith'\nexport default image().from('scratch').copy('hello.txt', '/hello.txt')\n`)
      const out = join(work, 'out.tar')
      const build = (store: string, file = 'build.ts', extra: string[] = []): Sample => {
        settle()
        return cli(['build', join(work, file), '--context', ctx, '--cache-dir', store, '-o', `type=oci,dest=${out}`, '--progress', 'quiet', ...extra], work)
      }
      // A cold or one-file build with its steps' times: an outlier then says where it went.
      const stepsFile = join(work, 'steps.json')
      const stepped = (store: string): Sample => ({ ...build(store, 'build.ts', ['--metadata-file', stepsFile]), steps: stepTimes(stepsFile) })
      // The COPY step's own time in a no-op rebuild (its cache check), from the build's metadata file.
      const metadata = join(work, 'metadata.json')
      const copyCheck = (): Sample => {
        const vertices = (JSON.parse(readFileSync(metadata, 'utf8')) as { 'imagesmith.vertices': { description: string; ms: number }[] })['imagesmith.vertices']
        const copy = vertices.find((v) => v.description.startsWith('COPY'))
        if (!copy) throw new Error('bench copy-run: no COPY vertex in the metadata file')
        return { s: copy.ms / 1000, rssMB: 0 }
      }

      // Peers: the base once more as a Docker-loadable archive (our own output, which has manifest.json).
      const baseTag = 'ism-bench/busybox:1'
      const baseDocker = join(work, 'base-docker.tar')
      writeFileSync(join(work, 'base.ts'), `import { image } from 'imagesmith'\nexport default image().from(${from})\n`)
      cli(['build', join(work, 'base.ts'), '--cache-dir', join(work, 'base-store'), '-t', baseTag, '-o', `type=oci,dest=${baseDocker}`, '--progress', 'quiet'], work)
      slots.push(buildahPeer(work, join(work, 'out-buildah.tar')), await buildkitPeer(baseDocker))
      const files = {
        buildah: writeDockerfiles(join(work, 'df-buildah'), `oci-archive:${base}`),
        BuildKit: writeDockerfiles(join(work, 'df-buildkit'), baseTag),
      }
      const peers = slots.flatMap((s) => ('peer' in s ? [s.peer] : []))
      const peerRuns = new Map<string, Record<RowName, number[]>>(peers.map((p) => [p.name, { cold: [], noop: [], oneFile: [], sleeps: [] }]))
      const failed = new Map<string, string>()
      const peerBuild = (p: Peer, row: RowName, which: 'main' | 'sleep') => {
        if (failed.has(p.name)) return
        try {
          settle()
          peerRuns.get(p.name)![row].push(p.build(files[p.name as keyof typeof files][which], which === 'main' ? ctx : join(work, 'small')))
        } catch (e) {
          failed.set(p.name, (e as Error).message.split('\n')[0]!)
        }
      }

      const ours: Record<RowName, Sample[]> = { cold: [], noop: [], oneFile: [], sleeps: [] }
      const checks: Sample[] = []
      const walks: number[] = []
      const listings: Sample[] = []
      const start: Sample[] = []
      for (let i = 0; i < RUNS; i++) {
        const store = join(work, `store-${i}`)
        for (const p of peers) if (!failed.has(p.name)) p.reset()
        ours.cold.push(stepped(store))
        for (const p of peers) peerBuild(p, 'cold', 'main')
        ours.noop.push(build(store, 'build.ts', ['--metadata-file', metadata]))
        checks.push(copyCheck())
        walks.push(statWalk(ctx))
        listings.push({ s: listing(ctx), rssMB: 0 })
        for (const p of peers) peerBuild(p, 'noop', 'main')
        writeFileSync(join(ctx, 'd7', 'f7.dat'), `changed ${i}\n`)
        ours.oneFile.push(stepped(store))
        for (const p of peers) peerBuild(p, 'oneFile', 'main')
        ours.sleeps.push(build(join(work, `sleep-store-${i}`), 'sleep.ts'))
        for (const p of peers) {
          if (!failed.has(p.name)) p.reset()
          peerBuild(p, 'sleeps', 'sleep')
        }
        rmSync(store, { recursive: true, force: true })
        rmSync(join(work, `sleep-store-${i}`), { recursive: true, force: true })
        // CLI start: a no-op build of a one-file script (its transform cached, its step cached).
        const startStore = join(work, 'start-store')
        const startBuild = () => cli(['build', join(work, 'start.ts'), '--context', join(work, 'small'), '--cache-dir', startStore, '-o', `type=oci,dest=${join(work, 'start.tar')}`, '--progress', 'quiet'], work)
        if (i === 0) startBuild()
        start.push(startBuild())
      }
      const walkS = median(walks)
      const pigzS = median(Array.from({ length: RUNS }, () => tarPigz(ctx, join(work, 'pigz.out'))))
      const nodeS = median(Array.from({ length: 5 }, nodeStart))

      const peerResults = (row: RowName): PeerResult[] => slots.map((s) => {
        if (!('peer' in s)) return { name: s.name, skipped: s.skipped }
        const name = s.peer.name
        const runs = peerRuns.get(name)![row]
        if (runs.length === 0) return { name, skipped: failed.get(name) ?? 'no runs' }
        return { name, s: median(runs), runs }
      })
      const row = (name: string, key: RowName | undefined, xs: Sample[], floorS: number, targetRatio: number, note: string, peerTargets: PeerTarget[] = []): BenchRow => ({
        case: `copy-run: ${name}`,
        imagesmithS: median(xs.map((x) => x.s)),
        floorS,
        targetRatio,
        peakRssMB: Math.max(...xs.map((x) => x.rssMB)),
        rssLimitMB: 200,
        notes: [
          `${note}; runs ${xs.map((x) => x.s.toFixed(2)).join(' / ')} s`,
          ...(xs.some((x) => x.steps) ? [`CPU and steps per run: ${xs.map((x) => `${x.s.toFixed(2)} s (CPU ${x.cpu}; ${x.steps})`).join(' / ')}`] : []),
        ],
        ...(key ? { peers: peerResults(key), peerTargets } : {}),
      })
      const both = (minSpeedup: number): PeerTarget[] => [{ peer: 'buildah', minSpeedup }, { peer: 'BuildKit', minSpeedup }]
      return [
        row('cold', 'cold', ours.cold, pigzS, 2.5, `floor: tar --sort=name | pigz -p2 -6 with both sha256s; peers: ${version('buildah', ['--version'])}, ${version('/usr/bin/docker', ['--version'])}`, both(2)),
        row('no-op rebuild', 'noop', ours.noop, walkS, 0.3 / walkS, 'floor: stat walk of the context (as the COPY check row); target: under 0.3 s whole process'),
        { ...row('COPY check in the no-op rebuild', undefined, checks, walkS, 2, `the COPY step's own time (--metadata-file); floor: stat walk of the context in a fresh process after each no-op (${walks.map((w) => w.toFixed(3)).join(' / ')} s; limits.md: 0.08 warm, 0.16 cold); target: within 2× of it`), peakRssMB: 0 },
        { ...row('context listing the no-op checks', undefined, listings, walkS, 2, 'find -printf of the context (context/tree-probe.ts), run alone; in a build it runs in a child process beside the CLI\'s start and the script\'s load; floor: the stat walk; target: within 2× of it'), peakRssMB: 0 },
        row('one file changed', 'oneFile', ours.oneFile, pigzS, 3, 'floor: tar | pigz of the context; target: at most half BuildKit\'s time (unchanged gzip members are copied)', [{ peer: 'BuildKit', minSpeedup: 2 }]),
        row('4 × RUN sleep 2', 'sleeps', ours.sleeps, 2, 1.5, 'floor: one sleep 2; target: under 3 s whole process'),
        row('CLI start (no-op build of a one-file script)', undefined, start, nodeS, 0.25 / nodeS, 'floor: node -e 0; target: 0.25 s whole process'),
      ]
    } finally {
      for (const s of slots) if ('peer' in s) await s.peer.close().catch(() => {})
      rmSync(work, { recursive: true, force: true })
    }
  },
}

export default copyRun
