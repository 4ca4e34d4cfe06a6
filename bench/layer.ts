/**
 * Child process of the layer bench: walks a tree (lstat only, uid/gid 0, mtime 0), sorts the
 * entries and writes one layer into a fresh store. Prints one JSON line with its own timings.
 * Usage: tsx bench/layer.ts <tree> <store-dir> [gzip|none] [level]
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import type { LayerEntry } from '../src/layer/entry.js'
import { sortEntries, writeLayer } from '../src/layer/write-layer.js'
import { BlobStore } from '../src/store/blob-store.js'

function walk(root: string): LayerEntry[] {
  const out: LayerEntry[] = []
  const visit = (rel: string): void => {
    for (const name of readdirSync(rel ? join(root, rel) : root)) {
      const path = rel ? `${rel}/${name}` : name
      const host = join(root, path)
      const st = lstatSync(host)
      const base = { path, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: 0 }
      if (st.isDirectory()) {
        out.push({ ...base, type: 'dir' })
        visit(path)
      } else if (st.isFile()) {
        out.push({ ...base, type: 'file', size: st.size, source: { path: host } })
      } else if (st.isSymbolicLink()) {
        out.push({ ...base, type: 'symlink', linkname: readlinkSync(host) })
      }
    }
  }
  visit('')
  return out
}

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

const [tree, storeDir, compression = 'gzip', level = '6'] = process.argv.slice(2)
if (!tree || !storeDir) throw new Error('usage: layer.ts <tree> <store-dir> [gzip|none] [level]')
const t0 = performance.now()
const entries = sortEntries(walk(tree))
const t1 = performance.now()
const ref = await writeLayer(entries, new BlobStore(storeDir), { compression: compression as 'gzip' | 'none', level: Number(level) })
const t2 = performance.now()
console.log(JSON.stringify({
  entries: entries.length,
  walkS: (t1 - t0) / 1000,
  writeS: (t2 - t1) / 1000,
  maxRssKB: peakRssKB(),
  ...ref,
}))
