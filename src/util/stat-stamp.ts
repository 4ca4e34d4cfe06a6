import type { Stats } from 'node:fs'

/**
 * A file's identity for the stat cache: `ino:size:mtimeMs:ctimeMs:` from a plain (not bigint) lstat,
 * so the context walk's own lstat serves (a second lstat per file was a third of a no-op COPY check
 * on 10k files). The times are doubles, exact to well under a microsecond; the stat cache's racy
 * window covers writes closer together than that.
 */
export function statStamp(st: Pick<Stats, 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:`
}
