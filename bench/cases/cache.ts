/**
 * Shared cache case: a build whose slow part is RUN (a 3 s step writing 32 MB of random bytes), cold on
 * an empty store exporting its cache (mode=max) to a docker-registry on loopback, then the same build on
 * another empty store importing that cache. Target: warm < 0.5 × cold. Both go through a counting proxy,
 * so the bytes each pulls are measured, not estimated.
 */
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { image } from '../../src/index.js'
import type { LocalBuildResult } from '../../src/pipeline/options.js'
import { startProxy, startTestRegistry } from '../../test/helpers/registry.js'
import { busyboxArchive } from '../../test/helpers/testbed.js'
import type { BenchCase, BenchRow } from '../types.js'

const TARGET = 0.5
const RSS_LIMIT_MB = 1024

const target = () => {
  const bb = `oci-archive:${busyboxArchive()}`
  const tools = image().from(bb).run('sleep 1 && head -c 8000000 /dev/urandom > /tool.bin')
  return image()
    .from(bb)
    .run('sleep 2 && head -c 32000000 /dev/urandom > /big.bin')
    .copy('app.txt', '/app.txt')
    .copy('/tool.bin', '/tool.bin', { from: tools })
}

const bench: BenchCase = {
  name: 'cache',
  async run(): Promise<BenchRow[]> {
    const scratch = mkdtempSync(join(tmpdir(), 'ism-bench-cache-'))
    const reg = await startTestRegistry()
    const proxy = await startProxy(reg.host)
    try {
      const ctx = join(scratch, 'ctx')
      mkdirSync(ctx)
      writeFileSync(join(ctx, 'app.txt'), 'app\n')
      const ref = `${proxy.host}/bench/cache:max`
      const timed = async (store: string, opts: object) => {
        const down = proxy.bytesDown
        const t0 = performance.now()
        const r = (await target().build({ context: ctx, cacheDir: join(scratch, store), ...opts })) as LocalBuildResult
        return { s: (performance.now() - t0) / 1000, r, pulled: proxy.bytesDown - down }
      }
      const cold = await timed('cold', { cacheTo: [{ type: 'registry', ref, mode: 'max' }] })
      const warm = await timed('warm', { cacheFrom: [{ type: 'registry', ref }] })
      if (warm.r.digest !== cold.r.digest) throw new Error(`warm digest ${warm.r.digest} differs from cold ${cold.r.digest}`)
      const keyed = warm.r.vertices.filter((v) => v.key !== undefined)
      const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`
      return [
        {
          case: 'cache: warm from registry on an empty store (floor: cold build + export)',
          imagesmithS: warm.s,
          floorS: cold.s,
          targetRatio: TARGET,
          peakRssMB: process.resourceUsage().maxRSS / 1024,
          rssLimitMB: RSS_LIMIT_MB,
          notes: [
            // Uploads go to the registry's own upload URL (its Location header), past the proxy: not counted.
            `cold: ${cold.s.toFixed(2)} s, pulled ${mb(cold.pulled)} (cache export, mode=max, ${cold.r.cache?.exported[0]?.records ?? 0} records)`,
            `warm: ${warm.s.toFixed(2)} s, pulled ${mb(warm.pulled)}, ${warm.r.cache?.imported ?? 0} of ${keyed.length} keyed steps from the imported cache, same digest ${warm.r.digest.slice(0, 19)}`,
          ],
        },
      ]
    } finally {
      await proxy.stop()
      await reg.stop()
      rmSync(scratch, { recursive: true, force: true })
    }
  },
}

export default bench
