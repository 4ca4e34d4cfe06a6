/**
 * Layer case: a 10,000-file COPY-like tree (1–40 KiB files in 610 dirs, half text-like, half random,
 * ~210 MB) built by the real CLI — `imagesmith build bench/layer-build.ts` (one `COPY . /app` onto
 * scratch) into a gzip OCI archive, cold store — against the GNU tar + pigz floor of limits.md (both
 * sha256s over the same tree). A second tree has the same files at twice the size (~420 MB): its
 * row shows that peak RSS stays flat when the layer grows. Peak RSS is the whole CLI process's
 * (node, tsx loader, build script, build). Median of 3 runs, page cache warm, empty store each run.
 */
import { spawn } from 'node:child_process'
import { createCipheriv } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchCase, BenchRow } from '../types.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const TREE_VERSION = 'many-small-v3'
/** Peak RSS allowed for the whole CLI process, whatever the layer size. */
const RSS_LIMIT_MB = 200
/** Peak RSS may differ this much between the two tree sizes and still count as flat (run-to-run noise). */
const FLAT_MB = 10
const RUNS = 3

/** Deterministic bytes: AES-128-CTR keystream under a fixed key (fast, and the same tree every time). */
function keystream(seed: number, n: number): Buffer {
  const iv = Buffer.alloc(16)
  iv.writeUInt32BE(seed, 0)
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), iv).update(Buffer.alloc(n))
}

const WORDS = ('the of and to in is for that with on as by at from this be are or an it not which have but was all ' +
  'import export const function return await async class interface type string number buffer stream layer image ' +
  'config digest manifest registry build cache node path file directory error value result options default index').split(' ')

/** A few MiB of word soup with identifiers mixed in: compresses like source text (gzip -6 ratio ~2.7). */
function textPool(size: number): Buffer {
  const rnd = keystream(1, size * 2)
  const alnum = 'abcdefghijklmnopqrstuvwxyz0123456789_'
  const parts: string[] = []
  let len = 0
  for (let i = 0; len < size; i += 4) {
    let w: string
    if (rnd[i]! % 3 === 0) {
      w = ''
      for (let k = 0, n = 2 + (rnd[i + 1]! % 8); k < n; k++) w += alnum[rnd[(i + 2 + k * 4) % rnd.length]! % alnum.length]
    } else {
      w = WORDS[rnd.readUInt16LE(i + 1) % WORDS.length]!
    }
    const sep = rnd[i + 3]! % 11 === 0 ? '\n' : ' '
    parts.push(w, sep)
    len += w.length + 1
  }
  return Buffer.from(parts.join('')).subarray(0, size)
}

/** The bench tree; `scale` 2 has the same files (names, kinds, count) at twice the size. */
export function ensureTree(scale: 1 | 2 = 1): { dir: string; bytes: number; files: number } {
  const dir = join(repo, '.bench', scale === 1 ? TREE_VERSION : `${TREE_VERSION}-x${scale}`)
  const marker = join(dir, '.complete')
  if (existsSync(marker)) return JSON.parse(readFileSync(marker, 'utf8')) as { dir: string; bytes: number; files: number }
  rmSync(dir, { recursive: true, force: true })
  console.error(`[bench] generating ${dir} (once) …`)
  const pool = textPool(8 << 20)
  const rnd = keystream(2, 10_000 * 8)
  const dirs: string[] = []
  for (let a = 0; a < 10; a++) {
    for (let b = 0; b < 60; b++) dirs.push(join(`d${a}`, `s${String(b).padStart(2, '0')}`))
  }
  for (const d of dirs) mkdirSync(join(dir, 'tree', d), { recursive: true }) // 10 + 600 dirs
  let bytes = 0
  for (let i = 0; i < 10_000; i++) {
    const size = scale * (1024 + (rnd.readUInt32LE(i * 8) % (39 * 1024 + 1)))
    const off = rnd.readUInt32LE(i * 8 + 4)
    const data = i % 2 === 0
      ? pool.subarray(off % (pool.length - size), (off % (pool.length - size)) + size)
      : keystream(1000 + i, size) // per file: the runner must not hold the tree in memory
    writeFileSync(join(dir, 'tree', dirs[i % dirs.length]!, `f${String(i).padStart(5, '0')}.${i % 2 === 0 ? 'txt' : 'bin'}`), data)
    bytes += size
  }
  const info = { dir: join(dir, 'tree'), bytes, files: 10_000 }
  writeFileSync(marker, JSON.stringify(info))
  return info
}

interface Timed { seconds: number; stdout: string }

function timed(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(cmd, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.on('error', reject)
    child.on('close', (code) => {
      const seconds = (performance.now() - t0) / 1000
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))
      else resolve({ seconds, stdout })
    })
  })
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

interface CliRun { seconds: number; peakRssKB: number; digest: string; blobBytes: number }

/** One `imagesmith build` of the tree: a whole CLI process, timed from spawn to exit. */
async function runImagesmith(tree: string): Promise<CliRun> {
  const store = mkdtempSync(join(tmpdir(), 'imagesmith-bench-store-'))
  try {
    const rssFile = join(store, 'peak-rss')
    const out = join(store, 'out.tar')
    const r = await timed(process.execPath, [
      '--require', join(repo, 'bench', 'peak-rss.cjs'),
      join(repo, 'bin', 'imagesmith.js'), 'build', join(repo, 'bench', 'layer-build.ts'),
      '--context', tree, '--cache-dir', join(store, 'cache'), '-o', `type=oci,dest=${out}`, '--progress', 'quiet',
    ], { ...process.env, BENCH_PEAK_RSS_FILE: rssFile })
    return { seconds: r.seconds, peakRssKB: Number(readFileSync(rssFile, 'utf8')), digest: r.stdout.trim(), blobBytes: statSync(out).size }
  } finally {
    rmSync(store, { recursive: true, force: true })
  }
}

async function runFloor(tree: string): Promise<{ seconds: number; sums: string[] }> {
  // fd 3: the process substitution must not write into tee's stdout (the pipe to pigz); `wait $!`
  // waits for that sha256sum too, which bash would otherwise not.
  const script = `set -o pipefail; exec 3>&1; tar --sort=name --owner=0 --group=0 --numeric-owner -cf - -C '${tree}' . | tee >(sha256sum >&3) | pigz -p2 -6 | sha256sum; wait $!`
  const r = await timed('bash', ['-c', script])
  return { seconds: r.seconds, sums: r.stdout.trim().split(/\s*-\s*/).filter(Boolean) }
}

/** Floor and CLI runs interleaved, so load from elsewhere hits both alike. */
async function measure(scale: 1 | 2): Promise<BenchRow & { peaks: number[] }> {
  const tree = ensureTree(scale)
  await timed('bash', ['-c', `tar -cf - -C '${tree.dir}' . > /dev/null`]) // warm the page cache
  const ours: CliRun[] = []
  const floor: number[] = []
  let floorSums: string[] = []
  for (let i = 0; i < RUNS; i++) {
    const f = await runFloor(tree.dir)
    floor.push(f.seconds)
    floorSums = f.sums
    ours.push(await runImagesmith(tree.dir))
  }
  const digests = new Set(ours.map((o) => o.digest))
  const peaks = ours.map((o) => o.peakRssKB / 1024)
  const name = `COPY 10k files, ${(tree.bytes / 1e6).toFixed(0)} MB → gzip OCI tar`
  return {
    case: name,
    imagesmithS: median(ours.map((o) => o.seconds)),
    floorS: median(floor),
    targetRatio: 1.5,
    peakRssMB: Math.max(...peaks),
    rssLimitMB: RSS_LIMIT_MB,
    peaks,
    notes: [
      `tree ${tree.files} files, ${(tree.bytes / 1e6).toFixed(1)} MB in ${tree.dir}; archive ${(ours[0]!.blobBytes / 1e6).toFixed(1)} MB`,
      `imagesmith build runs (whole CLI process): ${ours.map((o) => o.seconds.toFixed(2)).join(' / ')} s; peak RSS ${peaks.map((p) => p.toFixed(0)).join(' / ')} MB`,
      `floor runs: ${floor.map((s) => s.toFixed(2)).join(' / ')} s (tar --sort=name | tee >(sha256sum) | pigz -p2 -6 | sha256sum → ${floorSums.map((x) => x.slice(0, 12)).join(', ')})`,
      `manifest digest ${digests.size === 1 ? 'identical across runs' : 'DIFFERS across runs'}: ${[...digests].join(', ')}`,
    ],
  }
}

const layerCase: BenchCase = {
  name: 'layer',
  async run(): Promise<readonly BenchRow[]> {
    const one = await measure(1)
    const two = await measure(2)
    // Medians for the comparison (one run's peak varies by ~10 MB); the rows show the worst run.
    const m1 = median(one.peaks)
    const m2 = median(two.peaks)
    const growth = m2 - m1
    const { peaks: _p1, ...row1 } = one
    const { peaks: _p2, ...row2 } = two
    return [row1, {
      ...row2,
      notes: [
        ...(row2.notes ?? []),
        `peak RSS with files twice as large (medians): ${m1.toFixed(0)} → ${m2.toFixed(0)} MB, ${growth >= 0 ? '+' : ''}${growth.toFixed(0)} MB: ` +
          (growth <= FLAT_MB ? `flat (within ${FLAT_MB} MB)` : `GROWS with the layer size (more than ${FLAT_MB} MB)`),
      ],
    }]
  },
}

export default layerCase
