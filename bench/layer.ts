/**
 * Child process of the layer bench: the real path a user takes — `image().from('scratch').copy('.', '/app')`
 * built with a cold store into a gzip OCI tarball (COPY content hashing, layer write, archive export).
 * Prints one JSON line with its own timings.
 * Usage: tsx bench/layer.ts <tree> <store-dir> <out.tar>
 */
import { readFileSync } from 'node:fs'
import { image } from '../src/index.js'

/**
 * Peak RSS of this process image. VmHWM belongs to the post-exec address space; getrusage's maxRSS
 * on Linux also carries the parent's RSS at fork time across exec, so it is only a fallback.
 */
function peakRssKB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))
    if (m) return Number(m[1])
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS
}

const [tree, storeDir, out] = process.argv.slice(2)
if (!tree || !storeDir || !out) throw new Error('usage: layer.ts <tree> <store-dir> <out.tar>')
const t0 = performance.now()
const result = await image().from('scratch').copy('.', '/app').build({ context: tree, cacheDir: storeDir, output: { type: 'oci', dest: out } })
const t1 = performance.now()
const layer = result.layers[0]!
console.log(JSON.stringify({
  entries: 0,
  walkS: 0,
  writeS: (t1 - t0) / 1000,
  maxRssKB: peakRssKB(),
  digest: layer.digest,
  diffId: layer.diffId,
  size: layer.size,
  manifest: result.digest,
}))
