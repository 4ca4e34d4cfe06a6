/**
 * Layer case: a 10,000-file / ~210 MB COPY-like tree (1–40 KiB files in 610 dirs, half text-like,
 * half random) written as a gzip L6 layer by a separate process, against the GNU tar + pigz floor
 * of limits.md (both sha256s over the same tree). Median of 3 runs, page cache warm, empty store each run.
 */
import { spawn } from 'node:child_process'
import { createCipheriv } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchCase, BenchRow } from '../types.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const TREE_VERSION = 'many-small-v3'
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

export function ensureTree(): { dir: string; bytes: number; files: number } {
  const dir = join(repo, '.bench', TREE_VERSION)
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
    const size = 1024 + (rnd.readUInt32LE(i * 8) % (39 * 1024 + 1))
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

function timed(cmd: string, args: readonly string[]): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(cmd, args, { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] })
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

interface ChildResult { entries: number; walkS: number; writeS: number; maxRssKB: number; digest: string; diffId: string; size: number }

async function runImagesmith(tree: string): Promise<ChildResult & { seconds: number }> {
  const store = mkdtempSync(join(tmpdir(), 'imagesmith-bench-store-'))
  try {
    // One node process (tsx registered in-process), so maxRSS is the writer's own peak.
    const r = await timed(process.execPath, ['--import', 'tsx', join(repo, 'bench', 'layer.ts'), tree, store, join(store, 'out.tar')])
    return { ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult), seconds: r.seconds }
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

const layerCase: BenchCase = {
  name: 'layer',
  async run(): Promise<readonly BenchRow[]> {
    const tree = ensureTree()
    await timed('bash', ['-c', `tar -cf - -C '${tree.dir}' . > /dev/null`]) // warm the page cache
    const ours: Array<ChildResult & { seconds: number }> = []
    const floor: number[] = []
    let floorSums: string[] = []
    for (let i = 0; i < RUNS; i++) {
      const f = await runFloor(tree.dir)
      floor.push(f.seconds)
      floorSums = f.sums
      ours.push(await runImagesmith(tree.dir))
    }
    const digests = new Set(ours.map((o) => o.digest))
    const last = ours[ours.length - 1]!
    return [{
      case: 'COPY 10k files → gzip OCI tar',
      imagesmithS: median(ours.map((o) => o.seconds)),
      floorS: median(floor),
      targetRatio: 1.5,
      peakRssMB: Math.max(...ours.map((o) => o.maxRssKB)) / 1024,
      rssLimitMB: 200,
      notes: [
        `tree ${tree.files} files, ${(tree.bytes / 1e6).toFixed(1)} MB in ${tree.dir}; blob ${(last.size / 1e6).toFixed(1)} MB`,
        `imagesmith runs (whole process): ${ours.map((o) => o.seconds.toFixed(2)).join(' / ')} s; in-process build() ${ours.map((o) => (o.walkS + o.writeS).toFixed(2)).join(' / ')} s`,
        `floor runs: ${floor.map((s) => s.toFixed(2)).join(' / ')} s (tar --sort=name | tee >(sha256sum) | pigz -p2 -6 | sha256sum → ${floorSums.map((x) => x.slice(0, 12)).join(', ')})`,
        `peak RSS = max over runs of the writer process's VmHWM (node + tsx loader ≈ 80 MB of it); digest ${digests.size === 1 ? 'identical across runs' : 'DIFFERS across runs'}: ${last.digest}`,
      ],
    }]
  },
}

export default layerCase
