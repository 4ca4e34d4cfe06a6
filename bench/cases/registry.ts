/**
 * Registry case: transfers against a docker-registry (distribution 2.8) on loopback, next to
 * `skopeo copy` doing the same transfer in the same run (interleaved, median of 3):
 *  - pull + unpack of the Debian base (seeded from the provisioned testbed) into an empty store,
 *    against `skopeo copy docker://… oci:DIR` plus GNU `tar -x` of each layer;
 *  - push of a 200 MB image (one 200 MB layer of incompressible bytes, stored uncompressed, plus a
 *    small one) from the store to a registry that has none of it, against `skopeo copy oci:… docker://…`
 *    of the same layout. Each push goes to a fresh registry, so neither side can mount or skip.
 * The library runs in its own process (bench/registry-transfer.ts) and times from its first request
 * to its last; skopeo is timed as a whole process (its start-up is ~20 ms).
 */
import { spawn } from 'node:child_process'
import { createCipheriv } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { image } from '../../src/index.js'
import { seedBases, startTestRegistry, type TestRegistry } from '../../test/helpers/registry.js'
import type { BenchCase, BenchRow } from '../types.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const RUNS = 3
const TARGET = 1.2
const RSS_LIMIT_MB = 200

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ seconds: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(cmd, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve({ seconds: (performance.now() - t0) / 1000, stdout }) : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))))
  })
}

interface Ours {
  seconds: number
  bytes: number
  peakMB: number
  digest: string
}

async function library(args: string[], scratch: string): Promise<Ours> {
  const rssFile = join(scratch, `rss-${Math.random().toString(36).slice(2)}`)
  // tsx as a loader in this very process (its CLI would run the script in a child, out of reach of peak-rss.cjs).
  const r = await run(process.execPath, ['--require', join(repo, 'bench', 'peak-rss.cjs'), '--import', 'tsx', join(repo, 'bench', 'registry-transfer.ts'), ...args], { ...process.env, BENCH_PEAK_RSS_FILE: rssFile })
  const out = JSON.parse(r.stdout) as { seconds: number; bytes: number; digest: string }
  return { ...out, peakMB: Number(readFileSync(rssFile, 'utf8')) / 1024 }
}

function mb(bytes: number, s: number): string {
  return `${(bytes / 1e6 / s).toFixed(0)} MB/s`
}

async function pullRows(scratch: string): Promise<BenchRow[]> {
  const reg = await startTestRegistry()
  try {
    await seedBases(reg, { debian: true })
    const ref = `${reg.host}/library/debian:latest`
    const ours: (Ours & { pullSeconds: number })[] = []
    const copy: number[] = []
    const both: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const store = join(scratch, `pull-store-${i}`)
      ours.push((await library(['pull', store, ref], scratch)) as Ours & { pullSeconds: number })
      rmSync(store, { recursive: true, force: true })
      const layout = join(scratch, `skopeo-pull-${i}`)
      const rootfs = join(scratch, `skopeo-rootfs-${i}`)
      const c = (await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:latest`])).seconds
      const unpack =
        `set -e; mkdir -p ${rootfs}; ` +
        `m=$(python3 -c "import json,sys; i=json.load(open('${layout}/index.json')); print(i['manifests'][0]['digest'][7:])"); ` +
        `for l in $(python3 -c "import json; m=json.load(open('${layout}/blobs/sha256/$m')); print(' '.join(x['digest'][7:] for x in m['layers']))"); do tar -xzf ${layout}/blobs/sha256/$l -C ${rootfs}; done`
      const u = (await run('bash', ['-c', unpack])).seconds
      copy.push(c)
      both.push(c + u)
      rmSync(layout, { recursive: true, force: true })
      rmSync(rootfs, { recursive: true, force: true })
    }
    const bytes = ours[0]!.bytes
    const p = median(ours.map((o) => o.pullSeconds))
    const s = median(ours.map((o) => o.seconds))
    const fc = median(copy)
    const fb = median(both)
    const peak = Math.max(...ours.map((o) => o.peakMB))
    return [
      {
        case: `pull Debian base (${(bytes / 1e6).toFixed(0)} MB gzip)`,
        imagesmithS: p,
        floorS: fc,
        targetRatio: TARGET,
        peakRssMB: peak,
        rssLimitMB: RSS_LIMIT_MB,
        notes: [`imagesmith ${mb(bytes, p)} (runs ${ours.map((o) => o.pullSeconds.toFixed(2)).join(' / ')} s), skopeo copy docker:// → oci: ${mb(bytes, fc)} (runs ${copy.map((x) => x.toFixed(2)).join(' / ')} s)`],
      },
      {
        case: `pull + unpack Debian base`,
        imagesmithS: s,
        floorS: fb,
        targetRatio: TARGET,
        peakRssMB: peak,
        rssLimitMB: RSS_LIMIT_MB,
        notes: [`imagesmith ${mb(bytes, s)} (runs ${ours.map((o) => o.seconds.toFixed(2)).join(' / ')} s), skopeo copy + GNU tar -xzf per layer ${mb(bytes, fb)} (runs ${both.map((x) => x.toFixed(2)).join(' / ')} s); compressed bytes per second`],
      },
    ]
  } finally {
    await reg.stop()
  }
}

/** Deterministic incompressible bytes (AES-CTR keystream). */
function noise(seed: number, n: number): Buffer {
  const iv = Buffer.alloc(16)
  iv.writeUInt32BE(seed, 0)
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, 3), iv).update(Buffer.alloc(n))
}

async function pushRow(scratch: string): Promise<BenchRow> {
  const ctx = join(scratch, 'push-ctx')
  mkdirSync(join(ctx, 'big'), { recursive: true })
  for (let i = 0; i < 4; i++) writeFileSync(join(ctx, 'big', `part${i}.bin`), noise(i, 50 << 20))
  writeFileSync(join(ctx, 'small.txt'), 'a small second layer\n')
  const store = join(scratch, 'push-store')
  const layout = join(scratch, 'push-layout')
  const built = await image()
    .from('scratch')
    .copy('big/', '/data/')
    .copy('small.txt', '/small.txt')
    .build({ context: ctx, cacheDir: store, compression: 'none', output: { type: 'oci-layout', dest: layout }, tags: ['bench:1'] })
  rmSync(ctx, { recursive: true, force: true })
  const bytes = built.layers.reduce((n, l) => n + l.size, 0)
  const ours: Ours[] = []
  const theirs: number[] = []
  for (let i = 0; i < RUNS; i++) {
    let reg: TestRegistry = await startTestRegistry()
    try {
      const o = await library(['push', store, built.digest, `${reg.host}/bench/imagesmith:1`], scratch)
      if (o.digest !== built.digest || o.bytes < bytes) throw new Error(`push moved ${o.bytes} bytes as ${o.digest}`)
      ours.push(o)
    } finally {
      await reg.stop()
    }
    reg = await startTestRegistry()
    try {
      theirs.push((await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:1`, `docker://${reg.host}/bench/skopeo:1`])).seconds)
    } finally {
      await reg.stop()
    }
  }
  const s = median(ours.map((o) => o.seconds))
  const f = median(theirs)
  return {
    case: `push ${(bytes / 1e6).toFixed(0)} MB image to an empty registry`,
    imagesmithS: s,
    floorS: f,
    targetRatio: TARGET,
    peakRssMB: Math.max(...ours.map((o) => o.peakMB)),
    rssLimitMB: RSS_LIMIT_MB,
    notes: [
      `imagesmith ${mb(bytes, s)} (runs ${ours.map((o) => o.seconds.toFixed(2)).join(' / ')} s), skopeo copy ${mb(bytes, f)} (runs ${theirs.map((x) => x.toFixed(2)).join(' / ')} s); digest ${built.digest.slice(0, 19)}… on both`,
    ],
  }
}

const registryCase: BenchCase = {
  name: 'registry',
  async run(): Promise<readonly BenchRow[]> {
    const scratch = mkdtempSync(join(tmpdir(), 'imagesmith-bench-registry-'))
    try {
      return [...(await pullRows(scratch)), await pushRow(scratch)]
    } finally {
      for (const e of readdirSync(scratch)) rmSync(join(scratch, e), { recursive: true, force: true })
      rmSync(scratch, { recursive: true, force: true })
    }
  },
}

export default registryCase
