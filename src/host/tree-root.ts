/**
 * Store folders whose children are whole file trees (layer snapshots, a step's scratch) are marked
 * as the top of a directory hierarchy on ext4 (`chattr +T`, EXT4_TOPDIR_FL), so the kernel's Orlov
 * allocator puts each new tree in a block group of its own instead of next to its siblings.
 *
 * Why: ext4 without a journal (common on VM and CI disks) skips free inodes deleted in the last
 * 60 s (360 s while their inode table block is dirty) when it allocates one (`recently_deleted()` in
 * fs/ext4/ialloc.c), checking them one by one for every new inode. A snapshot written where a pruned store or the previous build's trees were just
 * removed then costs 0.4–0.9 ms per file in kernel time instead of ~15 µs: 10,000 files took 4–9 s
 * of system time, measured, against 0.8 s in a fresh group. The flag only moves where inodes go.
 *
 * Elsewhere (another filesystem, no chattr, a store on a read-only parent) nothing happens: this is
 * placement, never correctness, so every failure is ignored.
 */
import { execFile } from 'node:child_process'
import { closeSync, openSync, unlinkSync } from 'node:fs'
import { mkdir, rm, rmdir } from 'node:fs/promises'
import { join } from 'node:path'

const marked = new Map<string, Promise<void>>()

/** Makes `dir` (recursively) and marks it once per process; resolves when the mark is set or given up. */
export function treeRoot(dir: string): Promise<void> {
  let p = marked.get(dir)
  if (!p) {
    p = mkdir(dir, { recursive: true }).then(() => new Promise<void>((resolve) => {
      execFile('chattr', ['+T', dir], { timeout: 5000, windowsHide: true }, () => resolve())
    }))
    p.catch(() => marked.delete(dir))
    marked.set(dir, p)
  }
  return p
}

/** A file create costing more than this (µs, best of {@link PROBES}) means the group is being scanned. */
export const SLOW_CREATE_US = 150
const PROBES = 3
/** Dirs tried before the last one is kept whatever it costs. */
const ATTEMPTS = 4

/**
 * The cheapest of a few file creates in `dir`, in µs. A fresh group answers in ~10–30 µs; one where
 * thousands of inodes were just deleted in ~300–900 µs, every time (the scan starts over per inode).
 */
export function createCost(dir: string): number {
  let best = Infinity
  for (let i = 0; i < PROBES; i++) {
    const p = join(dir, `.probe-${i}`)
    const t0 = process.hrtime.bigint()
    closeSync(openSync(p, 'wx', 0o600))
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1000)
    unlinkSync(p)
  }
  return best
}

/**
 * Makes a new empty dir for a whole tree with `make` (a new name each call, under a {@link treeRoot})
 * and keeps it if creating files in it is cheap. Orlov puts a top dir in the group with the fewest
 * dirs among those with more free inodes than average (the name's hash breaks ties), so a dir that
 * landed where a deleted tree's inodes are still being skipped is kept aside while another is tried:
 * a few probes instead of seconds of kernel time. On a probe error the dir is replaced by another,
 * unprobed one. The files of a tree can still reach such inodes once the group's clean ones run out:
 * create-staging.ts moves them on.
 */
export async function spreadDir(make: () => Promise<string>): Promise<string> {
  // A slow dir is removed only once another is chosen: while it is there, Orlov (which puts a new
  // top dir in the group with the fewest dirs) counts it and picks another group for the next name.
  const rejected: string[] = []
  try {
    for (let attempt = 1; ; attempt++) {
      const dir = await make()
      if (attempt >= ATTEMPTS) return dir
      let cost: number
      try {
        cost = createCost(dir)
      } catch {
        // A probe file may be left in it, and nothing may be in a tree's dir but the tree: another,
        // unprobed.
        await rm(dir, { recursive: true, force: true }).catch(() => undefined)
        return await make()
      }
      if (cost <= SLOW_CREATE_US) return dir
      rejected.push(dir)
    }
  } finally {
    await Promise.all(rejected.map((d) => rmdir(d).catch(() => undefined)))
  }
}
