import { readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'

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
