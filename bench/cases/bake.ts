/**
 * Bake case: many builds in one process against the same builds as separate processes. N = 20
 * builds of a small busybox image with two RUN steps each (each build its own steps, so every one
 * runs two containers), (a) in one Node process with Promise.all on one store, as a monorepo
 * "bake" runs them, and (b) as 20 CLI processes started at once on one store (the same
 * concurrency). Both run from dist/, in fresh processes, on a store warmed by one build of the
 * base (unpacked, runtime found). Rows: wall time and CPU (user + system of the process tree) of
 * (a) against (b); target: one process no worse than twenty. Notes: time the main thread spent
 * starting child processes (bench/spawn-meter.mjs). Medians of 3 interleaved runs. First rows:
 * `imagesmith bake` of three services on a shared base (see {@link monorepoRows}).
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { BenchCase, BenchRow, PeerResult } from '../types.js'
import { buildkitPeer, type PeerSlot } from '../peers.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const N = 20
const RUNS = 3
const CLK_TCK = 100
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function busyboxArchive(): string {
  const dir = process.env['IMAGESMITH_TESTBED'] || join(homedir(), '.cache', 'imagesmith-testbed')
  const p = join(dir, 'busybox.tar')
  if (!existsSync(p)) throw new Error(`bench bake: no busybox base at ${p} (run scripts/provision.sh)`)
  return p
}

/** CPU seconds of this process's reaped children (and theirs): /proc/self/stat cutime + cstime. */
function childrenCpuS(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[13]) + Number(f[14])) / CLK_TCK
}

interface Meter { pid: number; spawns: number; spawnMs: number; maxSpawnMs: number; syncSpawns: number; syncMs: number; rssMB: number; cpuS: number; heapMB: number; byCommand: Record<string, { n: number; ms: number }> }

interface Sample {
  wallS: number
  cpuS: number
  spawns: number
  spawnMs: number
  maxSpawnMs: number
  syncMs: number
  rssMB: number
  /** Child starts by command, summed over the processes: `runc 40×/780 ms`. */
  byCommand: string
}

function node(args: string[], cwd: string, meterFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, BENCH_SPAWN_METER_FILE: meterFile, NODE_OPTIONS: `--import=${pathToFileURL(join(repo, 'bench', 'spawn-meter.mjs')).href}` }
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 8192) stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bench bake: node ${args.join(' ')} exited ${code}: ${stderr}`))))
  })
}

async function measure(meterFile: string, run: () => Promise<void>): Promise<Sample> {
  rmSync(meterFile, { force: true })
  const cpu0 = childrenCpuS()
  const t0 = process.hrtime.bigint()
  await run()
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9
  const cpuS = childrenCpuS() - cpu0
  const meters = readFileSync(meterFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Meter)
  const sum = (k: 'spawns' | 'spawnMs' | 'syncMs') => meters.reduce((a, m) => a + m[k], 0)
  const commands = new Map<string, { n: number; ms: number }>()
  for (const m of meters) for (const [c, v] of Object.entries(m.byCommand)) {
    const t = commands.get(c) ?? { n: 0, ms: 0 }
    commands.set(c, { n: t.n + v.n, ms: t.ms + v.ms })
  }
  const byCommand = [...commands].sort((x, y) => y[1].ms - x[1].ms).map(([c, v]) => `${c} ${v.n}×/${v.ms.toFixed(0)} ms`).join(', ')
  return {
    wallS,
    cpuS,
    spawns: sum('spawns'),
    spawnMs: sum('spawnMs'),
    maxSpawnMs: Math.max(...meters.map((m) => m.maxSpawnMs)),
    syncMs: sum('syncMs'),
    rssMB: Math.max(...meters.map((m) => m.rssMB)),
    byCommand,
  }
}

/** Wall seconds of one CLI process (from dist/), run to its end. */
let peakCliRssMB = 0

async function timedCli(args: string[], cwd: string, meter: string): Promise<number> {
  rmSync(meter, { force: true })
  const t0 = process.hrtime.bigint()
  await node([join(repo, 'bin', 'imagesmith.js'), ...args], cwd, meter)
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  for (const l of readFileSync(meter, 'utf8').trim().split('\n')) peakCliRssMB = Math.max(peakCliRssMB, (JSON.parse(l) as Meter).rssMB)
  return s
}

/**
 * `imagesmith bake` of a monorepo's three services on a shared base whose RUN takes a second: (a) one
 * cold bake (fresh store) against three cold `imagesmith build --target` of the same targets, each on
 * its own fresh store, summed (target: < 0.6× the sum: the base runs once, the services in parallel);
 * (b) the same bake again with nothing changed, whole process, archives already written (target: < 0.5 s).
 * BuildKit (a private dockerd 20.10; no buildx here) builds the same three services the way `docker
 * buildx bake` would leave them: one Dockerfile per service sharing the base stage, built one after
 * another on one daemon cache (so the base runs once), images left in the daemon (not exported,
 * which favours it); its row is the three builds' summed time after a cache reset.
 */
async function monorepoRows(work: string): Promise<BenchRow[]> {
  const dir = join(work, 'monorepo')
  mkdirSync(dir, { recursive: true })
  const from = JSON.stringify(`oci-archive:${busyboxArchive()}`)
  const services = ['api', 'web', 'worker']
  for (const s of services) {
    mkdirSync(join(dir, s), { recursive: true })
    writeFileSync(join(dir, s, 'app.txt'), `${s}\n`)
  }
  writeFileSync(join(dir, 'build.ts'), `import { image } from 'imagesmith'\n` +
    `const base = image().from(${from}).run('sleep 1; head -c 16 /dev/urandom | od -An -tx1 > /token')\n` +
    `const service = (n: string) => base.copy(n + '/app.txt', '/srv/app.txt').run('cp /srv/app.txt /srv/' + n + '.out')\n` +
    `export default { ${services.map((s) => `${s}: service('${s}')`).join(', ')} }\n`)
  const meter = join(work, 'mono-meter.jsonl')
  // The peer's base: our own output of the busybox archive, which carries Docker's manifest.json.
  const baseTag = 'ism-bench/busybox:1'
  const baseDocker = join(work, 'mono-base-docker.tar')
  writeFileSync(join(dir, 'base.ts'), `import { image } from 'imagesmith'\nexport default image().from(${from})\n`)
  await timedCli(['build', 'base.ts', '--cache-dir', join(work, 'mono-base-store'), '-t', baseTag, '-o', `type=oci,dest=${baseDocker}`, '--progress', 'quiet'], dir, meter)
  const slot: PeerSlot = await buildkitPeer(baseDocker)
  const dockerfiles = services.map((s) => {
    const f = join(dir, `${s}.Dockerfile`)
    writeFileSync(f, `FROM ${baseTag} AS base\nRUN sleep 1; head -c 16 /dev/urandom | od -An -tx1 > /token\nFROM base\nCOPY ${s}/app.txt /srv/app.txt\nRUN cp /srv/app.txt /srv/${s}.out\n`)
    return f
  })
  const peerRuns: number[] = []
  let peerSkipped = 'peer' in slot ? undefined : slot.skipped
  const bakeArgs = (store: string) => ['bake', 'build.ts', '--cache-dir', store, '--out-dir', join(dir, 'out'), '--progress', 'quiet']
  const cold: number[] = []
  const separate: number[] = []
  const noop: number[] = []
  let bakeRss = 0
  for (let r = 0; r < RUNS; r++) {
    const store = join(work, `mono-bake-${r}`)
    rmSync(join(dir, 'out'), { recursive: true, force: true })
    peakCliRssMB = 0
    cold.push(await timedCli(bakeArgs(store), dir, meter))
    noop.push(await timedCli(bakeArgs(store), dir, meter))
    bakeRss = Math.max(bakeRss, peakCliRssMB)
    rmSync(store, { recursive: true, force: true })
    let sum = 0
    for (const s of services) {
      const one = join(work, `mono-build-${r}-${s}`)
      sum += await timedCli(['build', 'build.ts', '--target', s, '--cache-dir', one, '-o', `type=oci,dest=${join(dir, `${s}-alone.tar`)}`, '--progress', 'quiet'], dir, meter)
      rmSync(one, { recursive: true, force: true })
    }
    separate.push(sum)
    if ('peer' in slot && peerSkipped === undefined) {
      try {
        slot.peer.reset()
        peerRuns.push(dockerfiles.reduce((t, f) => t + slot.peer.build(f, dir), 0))
      } catch (e) {
        peerSkipped = `failed: ${(e as Error).message.split('\n')[0]}`
      }
    }
  }
  if ('peer' in slot) await slot.peer.close()
  const peers: PeerResult[] = [peerSkipped !== undefined || peerRuns.length === 0 ? { name: 'BuildKit', skipped: peerSkipped ?? 'no runs' } : { name: 'BuildKit', s: median(peerRuns), runs: peerRuns }]
  return [
    {
      case: 'bake: 3 services on a shared 1 s base, cold bake vs 3 cold builds (summed)',
      imagesmithS: median(cold),
      floorS: median(separate),
      targetRatio: 0.6,
      peakRssMB: bakeRss,
      rssLimitMB: 600,
      notes: [`cold bake ${cold.map((x) => x.toFixed(2)).join(' / ')} s; three separate cold builds summed ${separate.map((x) => x.toFixed(2)).join(' / ')} s; floor: their sum, target < 0.6× it; BuildKit: the three services one after another on one daemon cache (the bake-equivalent here), summed`],
      peers,
    },
    {
      case: 'bake: 3 services, no-op bake (nothing changed), whole process',
      imagesmithS: median(noop),
      floorS: 0.5,
      targetRatio: 1,
      peakRssMB: bakeRss,
      rssLimitMB: 600,
      notes: [`no-op bake ${noop.map((x) => x.toFixed(2)).join(' / ')} s (CLI from dist/, archives unchanged so none rewritten); floor: the 0.5 s target itself`],
    },
  ]
}

const bake: BenchCase = {
  name: 'bake',
  async run(): Promise<readonly BenchRow[]> {
    const work = mkdtempSync(join(tmpdir(), 'ism-bench-bake-'))
    try {
      const from = JSON.stringify(`oci-archive:${busyboxArchive()}`)
      const dist = pathToFileURL(join(repo, 'dist', 'index.js')).href
      const steps = (i: number) => `.run('echo ' + ${i} + ' > /n').run('cat /n /n > /m')`
      for (let i = 0; i < N; i++) writeFileSync(join(work, `build-${i}.ts`), `import { image } from 'imagesmith'\nexport default image().from(${from})${steps(i)}\n`)
      writeFileSync(join(work, 'warm.ts'), `import { image } from 'imagesmith'\nexport default image().from(${from}).run('true')\n`)
      // The in-process bake: the same 20 definitions, built at once on one store.
      writeFileSync(join(work, 'bake.mjs'), `import { image } from ${JSON.stringify(dist)}\n` +
        `const builds = []\n` +
        `for (let i = 0; i < ${N}; i++) builds.push(image().from(${from}).run('echo ' + i + ' > /n').run('cat /n /n > /m'))\n` +
        `await Promise.all(builds.map((b) => b.build({ cacheDir: process.argv[2], context: ${JSON.stringify(work)} })))\n`)
      const bin = join(repo, 'bin', 'imagesmith.js')
      const cliBuild = (store: string, file: string, meter: string) => node([bin, 'build', join(work, file), '--context', work, '--cache-dir', store, '--progress', 'quiet'], work, meter)
      const meter = join(work, 'meter.jsonl')
      const oneProcess: Sample[] = []
      const processes: Sample[] = []
      for (let r = 0; r < RUNS; r++) {
        for (const mode of r % 2 === 0 ? ['one', 'many'] : ['many', 'one']) {
          const store = join(work, `store-${mode}-${r}`)
          await cliBuild(store, 'warm.ts', join(work, 'warm-meter.jsonl'))
          if (mode === 'one') oneProcess.push(await measure(meter, () => node([join(work, 'bake.mjs'), store], work, meter)))
          else processes.push(await measure(meter, async () => { await Promise.all(Array.from({ length: N }, (_, i) => cliBuild(store, `build-${i}.ts`, meter))) }))
          rmSync(store, { recursive: true, force: true })
        }
      }
      const med = (xs: Sample[], k: Exclude<keyof Sample, 'byCommand'>) => median(xs.map((x) => x[k]))
      const spawnNote = (name: string, xs: Sample[]) =>
        `${name}: ${med(xs, 'spawns')} child starts, ${med(xs, 'spawnMs').toFixed(0)} ms on the main thread(s) in ChildProcess#spawn (slowest ${med(xs, 'maxSpawnMs').toFixed(1)} ms), ${med(xs, 'syncMs').toFixed(0)} ms in sync spawns; ` +
        `wall ${xs.map((x) => x.wallS.toFixed(2)).join(' / ')} s, CPU ${xs.map((x) => x.cpuS.toFixed(2)).join(' / ')} s, peak RSS ${med(xs, 'rssMB').toFixed(0)} MB per process; ` +
        `last run's child starts: ${xs.at(-1)!.byCommand}`
      const notes = [spawnNote(`one process (Promise.all of ${N})`, oneProcess), spawnNote(`${N} CLI processes`, processes)]
      return [
        ...(await monorepoRows(work)),
        {
          case: `bake: ${N} builds × 2 RUN in one process vs ${N} CLI processes, wall`,
          imagesmithS: med(oneProcess, 'wallS'),
          floorS: med(processes, 'wallS'),
          targetRatio: 1,
          peakRssMB: med(oneProcess, 'rssMB'),
          rssLimitMB: 600,
          notes: [...notes, 'floor: the same builds as CLI processes started at once; target: one process no slower'],
        },
        {
          case: `bake: ${N} builds × 2 RUN in one process vs ${N} CLI processes, CPU`,
          imagesmithS: med(oneProcess, 'cpuS'),
          floorS: med(processes, 'cpuS'),
          targetRatio: 1,
          peakRssMB: med(oneProcess, 'rssMB'),
          rssLimitMB: 600,
          notes: ['CPU: user + system of the whole process tree (runtimes and containers included), from the bench process\'s reaped-children times; floor: the CLI processes\' tree'],
        },
      ]
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  },
}

export default bake
