import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { tempPath, writeFileAtomic } from '../store/atomic-write.js'

/** Compiled scripts not written for this long go when another is written (a hit does not touch them). */
const KEEP_MS = 7 * 24 * 3600 * 1000

/**
 * Keeps the compiled-script cache from growing with every edit of every script: called after a new
 * file is written there (a miss, so never on the no-op path). A script still in use is compiled
 * again at most once a week.
 */
export function sweepScriptCache(dir: string, now = Date.now()): void {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return
  }
  for (const name of names) {
    const p = join(dir, name)
    try {
      if (now - statSync(p).mtimeMs > KEEP_MS) rmSync(p, { force: true })
    } catch {
      /* gone meanwhile, or not ours to remove */
    }
  }
}

/**
 * Puts a compiled script (or a marker) at `path` in the cache, atomically (a reader sees all of it
 * or nothing, and two writers never share a temp file), then sweeps old entries. False when the
 * cache cannot be written (read-only, full): the caller goes on without it.
 */
export async function writeScriptCache(path: string, text: string): Promise<boolean> {
  try {
    await mkdir(dirname(path), { recursive: true })
    await writeFileAtomic(path, text)
  } catch {
    return false
  }
  sweepScriptCache(dirname(path))
  return true
}

/** {@link writeScriptCache} for sync callers (a require() of TypeScript compiles inside require). */
export function writeScriptCacheSync(path: string, text: string): boolean {
  const tmp = tempPath(dirname(path), basename(path))
  try {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(tmp, text)
    renameSync(tmp, path)
  } catch {
    rmSync(tmp, { force: true })
    return false
  }
  sweepScriptCache(dirname(path))
  return true
}
