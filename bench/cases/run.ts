/**
 * RUN case: per-step overhead of a trivial `RUN true` on a warm busybox base (layer unpacked,
 * runtime detected), through the RUN executor, against the floor of doing the same by hand:
 * `mount -t overlay` + `<runtime> run --bundle` of an equivalent config.json (own network
 * namespace, loopback only: network 'none') + `umount`, plus writing the (empty) layer. Two rows
 * against that one floor: the step with `network: 'none'`, and with the default network (a private
 * namespace plus slirp4netns), which shows what the user-mode network adds per RUN.
 * Medians of interleaved runs, in this process.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runExecutor } from '../../src/ops/run.js'
import { buildSpec } from '../../src/runtime/oci-spec.js'
import { detectRuntime } from '../../src/runtime/detect.js'
import type { LayerEntry } from '../../src/layer/entry.js'
import { writeLayer } from '../../src/layer/write-layer.js'
import type { Digest } from '../../src/oci/media-types.js'
import type { ExecContext, ImageState } from '../../src/solver/types.js'
import { ensureSnapshot } from '../../src/snapshot/unpack.js'
import { Store } from '../../src/store/store.js'
import type { BenchCase, BenchRow } from '../types.js'

const RUNS = 15
const WARMUP = 3
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function busyboxBinary(): string {
  for (const p of ['/usr/bin/busybox', '/bin/busybox']) if (existsSync(p)) return p
  throw new Error('bench run: needs busybox-static (/usr/bin/busybox)')
}

/** A busybox base as one layer: bin/busybox plus the applets the step needs. */
async function busyboxBase(store: Store): Promise<ImageState> {
  const bin = busyboxBinary()
  const size = Number(execFileSync('stat', ['-c', '%s', bin]).toString().trim())
  const t = 1_700_000_000
  const entries: LayerEntry[] = [
    { type: 'dir', path: 'bin', mode: 0o755, uid: 0, gid: 0, mtime: t },
    { type: 'file', path: 'bin/busybox', mode: 0o755, uid: 0, gid: 0, mtime: t, size, source: { path: bin } },
    { type: 'symlink', path: 'bin/sh', linkname: 'busybox', mode: 0o777, uid: 0, gid: 0, mtime: t },
    { type: 'symlink', path: 'bin/true', linkname: 'busybox', mode: 0o777, uid: 0, gid: 0, mtime: t },
  ]
  const layer = await writeLayer(entries, store.blobs)
  return {
    config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.diffId] }, history: [] },
    layers: [layer],
    args: [],
    cmdSet: false,
  }
}

function ctxOf(store: Store): ExecContext {
  return {
    store,
    contextDir: tmpdir(),
    epoch: 0,
    clampRunMtimes: false,
    created: '1970-01-01T00:00:00Z',
    platform: { os: 'linux', architecture: 'amd64' },
    noCache: true,
    compression: 'gzip',
    secrets: {},
    network: 'default',
    emit: () => {},
  }
}

/** The floor: the same container started by hand, without imagesmith. */
function floorOnce(runtime: string, snapshot: string, scratch: string): number {
  const t0 = performance.now()
  const dir = mkdtempSync(join(scratch, 'f-'))
  for (const d of ['u', 'w', 'r']) mkdirSync(join(dir, d))
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${snapshot},upperdir=${dir}/u,workdir=${dir}/w`, `${dir}/r`])
  const spec = buildSpec({
    args: ['/bin/sh', '-c', 'true'],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    cwd: '/',
    user: { uid: 0, gid: 0, additionalGids: [] },
    rootfs: `${dir}/r`,
    hostname: 'floor',
    network: 'none',
    mounts: [],
  })
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec))
  const r = spawnSync(runtime, ['run', '--bundle', dir, `floor-${process.pid}-${Date.now()}`], { stdio: 'ignore' })
  execFileSync('umount', [`${dir}/r`])
  rmSync(dir, { recursive: true, force: true })
  if (r.status !== 0) throw new Error(`${runtime} run exited ${r.status}`)
  return (performance.now() - t0) / 1000
}

const runCase: BenchCase = {
  name: 'run',
  async run(): Promise<readonly BenchRow[]> {
    const root = mkdtempSync(join(tmpdir(), 'imagesmith-bench-run-'))
    try {
      const store = new Store(join(root, 'store'))
      await store.blobs.init()
      const base = await busyboxBase(store)
      const snapshot = (await ensureSnapshot(store, base.layers[0]!)).dir
      const runtime = await detectRuntime({ store })
      const ctx = ctxOf(store)
      const vertexOf = (network: 'none' | 'default', c: string) =>
        ({ id: `sha256:${c.repeat(64)}` as Digest, kind: 'run' as const, spec: { command: ['true'], shellForm: true, network, mounts: [] }, inputs: [], meta: { description: 'RUN true' } })
      const vNone = vertexOf('none', 'b')
      const vDefault = vertexOf('default', 'c')
      const scratch = join(root, 'floor')
      mkdirSync(scratch)

      const ours: number[] = []
      const oursDefault: number[] = []
      const floor: number[] = []
      const write: number[] = []
      for (let i = 0; i < WARMUP + RUNS; i++) {
        const f = floorOnce(runtime.binary, snapshot, scratch)
        const w0 = performance.now()
        await writeLayer([], store.blobs)
        const w = (performance.now() - w0) / 1000
        const t0 = performance.now()
        await runExecutor.exec(vNone, [base], ctx)
        const o = (performance.now() - t0) / 1000
        const t1 = performance.now()
        await runExecutor.exec(vDefault, [base], ctx)
        const d = (performance.now() - t1) / 1000
        if (i >= WARMUP) {
          floor.push(f)
          write.push(w)
          ours.push(o)
          oursDefault.push(d)
        }
      }
      const floorS = median(floor) + median(write)
      const floorNote = `floor = mount overlay + ${runtime.name} run (own netns, loopback only) + umount ${(median(floor) * 1000).toFixed(1)} ms + empty layer write ${(median(write) * 1000).toFixed(1)} ms`
      const rss = process.resourceUsage().maxRSS / 1024
      return [
        {
          case: `RUN true, network none (${runtime.name}, warm busybox)`,
          imagesmithS: median(ours),
          floorS,
          targetRatio: 1.5,
          peakRssMB: rss,
          rssLimitMB: 400,
          notes: [
            `median of ${RUNS} interleaved runs after ${WARMUP} warm-up: imagesmith ${(median(ours) * 1000).toFixed(1)} ms; ${floorNote}`,
            `imagesmith runs (ms): ${ours.map((s) => (s * 1000).toFixed(0)).join(' ')}`,
            `floor runs (ms): ${floor.map((s) => (s * 1000).toFixed(0)).join(' ')}`,
            'peak RSS is the whole bench process (maxRSS), including cases run before this one',
          ],
        },
        {
          case: `RUN true, default network: private netns + slirp4netns (${runtime.name}, warm busybox)`,
          imagesmithS: median(oursDefault),
          floorS,
          targetRatio: 1.5,
          peakRssMB: rss,
          rssLimitMB: 400,
          notes: [
            `default network ${(median(oursDefault) * 1000).toFixed(1)} ms vs network none ${(median(ours) * 1000).toFixed(1)} ms: ` +
              `the user-mode network adds ${((median(oursDefault) - median(ours)) * 1000).toFixed(1)} ms per RUN (same floor as the row above)`,
            `default-network runs (ms): ${oursDefault.map((s) => (s * 1000).toFixed(0)).join(' ')}`,
          ],
        },
      ]
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  },
}

export default runCase
