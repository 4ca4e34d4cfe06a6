import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

/** The store's directory when no option names one: $IMAGESMITH_CACHE, else $XDG_CACHE_HOME/imagesmith, else ~/.cache/imagesmith. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IMAGESMITH_CACHE) return resolve(env.IMAGESMITH_CACHE)
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'imagesmith')
  return join(homedir(), '.cache', 'imagesmith')
}
