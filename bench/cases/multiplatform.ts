/**
 * multiplatform case. Row 1: what qemu-user emulation costs a trivial step: a build of
 * `FROM busybox-arm64 + RUN true` for linux/arm64 (qemu-aarch64 through binfmt_misc) against the
 * same build of the amd64 busybox for linux/amd64, natively. Same store, base unpacked by a
 * warm-up, `noCache` so the RUN runs every time, `network: 'none'`; medians of interleaved runs.
 * Row 2: a cold two-platform build, whole process (the CLI from dist/, `--platform
 * linux/amd64,linux/arm64`, to an OCI tarball) of a Dockerfile with a `FROM --platform=$BUILDPLATFORM`
 * stage (one native RUN) and a per-platform stage (COPY from it, and a RUN, emulated for arm64) on an
 * index of the two busybox bases; against buildah 1.28's `build --platform linux/amd64,linux/arm64
 * --manifest L` + `manifest push --all L oci-archive:` of the same Dockerfile in the same run
 * (interleaved, each from an empty store; buildah runs the build-platform stage emulated for arm64).
 * Floor: our cold build of the same Dockerfile for linux/amd64 alone. Medians of 3 runs.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { image } from '../../src/index.js'
import { runSupport } from '../../src/ops/platform-support.js'
import { busyboxMultiLayout } from '../../test/helpers/multi-base.js'
import { mountsUnder } from '../../test/helpers/testbed.js'
import { toolPath } from '../../test/helpers/tools.js'
import type { BenchCase, BenchRow, PeerResult } from '../types.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const TWO_RUNS = 3

const RUNS = 9
const WARMUP = 2
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const testbed = process.env['IMAGESMITH_TESTBED'] || join(process.env['HOME'] ?? '/root', '.cache', 'imagesmith-testbed')

async function buildOnce(layout: string, platform: string, cacheDir: string, context: string): Promise<number> {
  const t0 = performance.now()
  await image().from(`oci:${layout}`).run(['true'], { network: 'none' }).build({ context, cacheDir, platform, noCache: true })
  return (performance.now() - t0) / 1000
}

function timed(cmd: string, args: string[]): { s: number; rssMB: number } {
  const t0 = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 })
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || '').slice(-2000)}`)
  return { s, rssMB: Number(r.stderr.trim().split('\n').pop()) / 1024 }
}

/** The two-platform row: ours (whole process, cold) against buildah's --platform --manifest build, interleaved. */
function twoPlatformRow(dir: string): BenchRow {
  // buildah reads an oci: path as a repository name too, which must be lower case.
  const baseDir = join(tmpdir(), `ism-bench-mp-base-${randomBytes(6).toString('hex')}`)
  try {
    const base = `oci:${busyboxMultiLayout(baseDir)}:latest`
    const ctx = join(dir, 'ctx2')
    mkdirSync(ctx, { recursive: true })
    const df = join(ctx, 'Dockerfile')
    writeFileSync(df, [
      `FROM --platform=$BUILDPLATFORM ${base} AS build`,
      'RUN uname -m > /built-on && echo tool > /tool',
      `FROM ${base}`,
      'COPY --from=build /built-on /tool /opt/',
      'RUN uname -m > /arch',
      '',
    ].join('\n'))
    const ours = (platform: string, i: number) =>
      timed(process.execPath, [join(repo, 'bin', 'imagesmith.js'), 'build', '-f', df, '--platform', platform, '--network', 'none', '-o', `type=oci,dest=${join(dir, `ours-${i}.tar`)}`,
        '--cache-dir', join(dir, `ours-cache-${platform.replace(/[/,]/g, '_')}-${i}`), '--progress', 'quiet', ctx])
    const hasBuildah = toolPath('buildah') !== undefined && toolPath('runc') !== undefined
    const buildah = (i: number): number => {
      const g = ['--root', join(dir, `bh-${i}`), '--runroot', join(dir, `bhrun-${i}`), '--storage-driver', 'vfs']
      const t0 = process.hrtime.bigint()
      timed('buildah', [...g, 'bud', '--runtime', 'runc', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--layers', '-q',
        '--platform', 'linux/amd64,linux/arm64', '--manifest', 'bench-mp', '-f', df, ctx])
      timed('buildah', [...g, 'manifest', 'push', '--all', '-q', 'bench-mp', `oci-archive:${join(dir, `theirs-${i}.tar`)}`])
      const s = Number(process.hrtime.bigint() - t0) / 1e9
      spawnSync('buildah', [...g, 'rm', '--all'], { stdio: 'ignore' })
      for (const m of mountsUnder(join(dir, `bh-${i}`))) spawnSync('umount', ['-l', m], { stdio: 'ignore' })
      rmSync(join(dir, `bh-${i}`), { recursive: true, force: true })
      rmSync(join(dir, `bhrun-${i}`), { recursive: true, force: true })
      return s
    }
    const two: number[] = []
    const one: number[] = []
    const theirs: number[] = []
    let rss = 0
    for (let i = 0; i < TWO_RUNS; i++) {
      const t = ours('linux/amd64,linux/arm64', i)
      two.push(t.s)
      rss = Math.max(rss, t.rssMB)
      one.push(ours('linux/amd64', i).s)
      if (hasBuildah) theirs.push(buildah(i))
    }
    const peer: PeerResult = hasBuildah ? { name: 'buildah', s: median(theirs), runs: theirs } : { name: 'buildah', skipped: 'buildah or runc not installed' }
    return {
      case: 'two-platform build (amd64 + arm64 emulated RUN), cold, CLI to an OCI tarball',
      imagesmithS: median(two),
      floorS: median(one),
      targetRatio: 3,
      peakRssMB: rss,
      rssLimitMB: 200,
      notes: [
        `ours, two platforms: ${two.map((x) => x.toFixed(2)).join(' / ')} s; amd64 alone (floor): ${one.map((x) => x.toFixed(2)).join(' / ')} s` +
          (hasBuildah ? `; buildah --platform --manifest + manifest push --all: ${theirs.map((x) => x.toFixed(2)).join(' / ')} s` : ''),
        'the build-platform stage runs once natively in ours; buildah 1.28 runs it for each platform, emulated for arm64',
      ],
      peers: [peer],
      peerTargets: [{ peer: 'buildah', minSpeedup: 1 }],
    }
  } finally {
    rmSync(baseDir, { recursive: true, force: true })
  }
}

const multiplatform: BenchCase = {
  name: 'multiplatform',
  async run(): Promise<readonly BenchRow[]> {
    const native = join(testbed, 'busybox-oci')
    const arm64 = join(testbed, 'busybox-arm64-oci')
    if (!existsSync(join(testbed, 'busybox-arm64.stamp')) || runSupport({ os: 'linux', architecture: 'arm64' }) === undefined) {
      throw new Error('bench multiplatform: needs the arm64 test bed (bash scripts/provision.sh as root: qemu-user-static, the qemu-aarch64 handler, busybox-arm64)')
    }
    const dir = mkdtempSync(join(tmpdir(), 'ism-bench-mp-'))
    try {
      const cacheDir = join(dir, 'cache')
      const nat: number[] = []
      const emu: number[] = []
      for (let i = 0; i < WARMUP + RUNS; i++) {
        const n = await buildOnce(native, 'linux/amd64', cacheDir, dir)
        const e = await buildOnce(arm64, 'linux/arm64', cacheDir, dir)
        if (i >= WARMUP) {
          nat.push(n)
          emu.push(e)
        }
      }
      const rss = process.memoryUsage().rss / 1e6
      const two = twoPlatformRow(dir)
      return [
        {
          case: 'emulated RUN true (linux/arm64 under qemu-user) vs native',
          imagesmithS: median(emu),
          floorS: median(nat),
          targetRatio: 3,
          peakRssMB: rss,
          rssLimitMB: 400,
          notes: [
            `whole builds, noCache, network none: emulated ${emu.map((x) => x.toFixed(3)).join(' / ')} s; native ${nat.map((x) => x.toFixed(3)).join(' / ')} s`,
            `floor: the same build natively (amd64 busybox); target: the emulated build within 3x of it`,
          ],
        },
        two,
      ]
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },
}

export default multiplatform
