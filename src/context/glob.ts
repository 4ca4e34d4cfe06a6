/**
 * Source paths as Docker's COPY reads them: Go `filepath.Match` per path segment (`*`, `?`,
 * `[...]` with `^` negation and ranges, `\` escapes), and path resolution with a directory as the
 * root (symlinks followed inside it, `..` clamped at it), like BuildKit's `fs.RootPath`.
 * Everything here is synchronous on purpose: one promise per file costs more than the syscall.
 */
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs'
import { join } from 'node:path'

/** Go's `filepath.ErrBadPattern`. */
export class BadPatternError extends Error {
  constructor(pattern: string) {
    super(`syntax error in pattern: ${JSON.stringify(pattern)}`)
    this.name = 'BadPatternError'
  }
}

/** True when `p` holds any of the characters that make a segment a pattern (Go's `hasMeta`). */
export function hasMeta(p: string): boolean {
  return /[*?[\\]/.test(p)
}

/** Go's `path.Clean`: lexical, '.' for empty, no trailing '/', `..` at the root dropped. */
export function goClean(p: string): string {
  if (p === '') return '.'
  const rooted = p.startsWith('/')
  const out: string[] = []
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop()
      else if (!rooted) out.push('..')
    } else out.push(part)
  }
  const s = out.join('/')
  return rooted ? `/${s}` : s === '' ? '.' : s
}

/**
 * Go's `filepath.Match(pattern, name)` on Unix: `*` and `?` never match '/'.
 * Throws {@link BadPatternError} where Go returns `ErrBadPattern`.
 */
export function goMatch(pattern: string, name: string): boolean {
  let pat = Array.from(pattern)
  let s = Array.from(name)
  outer: while (pat.length > 0) {
    const sc = scanChunk(pat)
    const { star, chunk } = sc
    pat = sc.rest
    if (star && chunk.length === 0) return !s.includes('/')
    const m = matchChunk(chunk, s, pattern)
    if (m !== null && (m.length === 0 || pat.length > 0)) {
      s = m
      continue
    }
    if (star) {
      for (let i = 0; i < s.length && s[i] !== '/'; i++) {
        const t = matchChunk(chunk, s.slice(i + 1), pattern)
        if (t !== null) {
          if (pat.length === 0 && t.length > 0) continue
          s = t
          continue outer
        }
      }
    }
    // Go checks that the rest of the pattern is well-formed before answering false.
    while (pat.length > 0) {
      const r = scanChunk(pat)
      pat = r.rest
      matchChunk(r.chunk, [], pattern)
    }
    return false
  }
  return s.length === 0
}

function scanChunk(pattern: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let p = pattern
  let star = false
  while (p.length > 0 && p[0] === '*') {
    p = p.slice(1)
    star = true
  }
  let inrange = false
  let i = 0
  scan: for (; i < p.length; i++) {
    switch (p[i]) {
      case '\\':
        if (i + 1 < p.length) i++
        break
      case '[':
        inrange = true
        break
      case ']':
        inrange = false
        break
      case '*':
        if (!inrange) break scan
        break
    }
  }
  return { star, chunk: p.slice(0, i), rest: p.slice(i) }
}

/** Returns the rest of `s` after `chunk` matched its start, or null. Throws on a malformed chunk. */
function matchChunk(chunkIn: string[], sIn: string[], pattern: string): string[] | null {
  let chunk = chunkIn
  let s = sIn
  let failed = false
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true
    const c = chunk[0]!
    if (c === '[') {
      let r = ''
      if (!failed) {
        r = s[0]!
        s = s.slice(1)
      }
      chunk = chunk.slice(1)
      let negated = false
      if (chunk.length > 0 && chunk[0] === '^') {
        negated = true
        chunk = chunk.slice(1)
      }
      let match = false
      let nrange = 0
      for (;;) {
        if (chunk.length > 0 && chunk[0] === ']' && nrange > 0) {
          chunk = chunk.slice(1)
          break
        }
        const lo = getEsc(chunk, pattern)
        chunk = lo.rest
        let hi = lo.r
        if (chunk[0] === '-') {
          const h = getEsc(chunk.slice(1), pattern)
          hi = h.r
          chunk = h.rest
        }
        const rc = r.codePointAt(0) ?? -1
        if (lo.r <= rc && rc <= hi) match = true
        nrange++
      }
      if (match === negated) failed = true
    } else if (c === '?') {
      if (!failed) {
        if (s[0] === '/') failed = true
        s = s.slice(1)
      }
      chunk = chunk.slice(1)
    } else {
      if (c === '\\') {
        chunk = chunk.slice(1)
        if (chunk.length === 0) throw new BadPatternError(pattern)
      }
      if (!failed) {
        if (chunk[0] !== s[0]) failed = true
        s = s.slice(1)
      }
      chunk = chunk.slice(1)
    }
  }
  return failed ? null : s
}

function getEsc(chunkIn: string[], pattern: string): { r: number; rest: string[] } {
  let chunk = chunkIn
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') throw new BadPatternError(pattern)
  if (chunk[0] === '\\') {
    chunk = chunk.slice(1)
    if (chunk.length === 0) throw new BadPatternError(pattern)
  }
  const r = chunk[0]!.codePointAt(0)!
  const rest = chunk.slice(1)
  if (rest.length === 0) throw new BadPatternError(pattern)
  return { r, rest }
}

/** A path resolved inside a root directory. */
export interface Resolved {
  /** Path relative to the root ('' = the root itself), '/'-separated, symlinks resolved. */
  readonly rel: string
  /** Absolute host path (always inside the root). */
  readonly host: string
  /** lstat of `host`; undefined when nothing is there. */
  readonly stat: Stats | undefined
}

/** One match of a source: where it resolved to, and its path as written (its name is the last segment). */
export interface GlobMatch extends Resolved {
  readonly written: string
}

const MAX_LINKS = 255

/**
 * Resolves `path` (relative, or absolute meaning "from the root") inside `root` the way BuildKit's
 * `fs.RootPath` does: every symlink on the way is read and followed with `root` as '/', and `..`
 * stops at the root, so the result is always inside `root`. The last component is followed only
 * when `followLast`. A missing component ends the walk with `stat` undefined.
 */
export function resolveInRoot(root: string, path: string, followLast = true): Resolved {
  let todo = path.split('/').filter((p) => p !== '' && p !== '.')
  const done: string[] = []
  let links = 0
  while (todo.length > 0) {
    const part = todo.shift()!
    if (part === '..') {
      done.pop()
      continue
    }
    const rel = [...done, part].join('/')
    const host = join(root, rel)
    let st: Stats
    try {
      st = lstatSync(host)
    } catch {
      return { rel: [...done, part, ...todo].join('/'), host: join(root, ...done, part, ...todo), stat: undefined }
    }
    if (st.isSymbolicLink() && (todo.length > 0 || followLast)) {
      if (++links > MAX_LINKS) return { rel, host, stat: undefined }
      const target = readlinkSync(host)
      const parts = target.split('/').filter((p) => p !== '' && p !== '.')
      if (target.startsWith('/')) done.length = 0
      todo = [...parts, ...todo]
      continue
    }
    if (todo.length > 0 && !st.isDirectory()) {
      return { rel: [...done, part, ...todo].join('/'), host: join(root, ...done, part, ...todo), stat: undefined }
    }
    done.push(part)
    if (todo.length === 0) return { rel, host, stat: st }
  }
  const rel = done.join('/')
  const host = rel === '' ? root : join(root, rel)
  try {
    return { rel, host, stat: lstatSync(host) }
  } catch {
    return { rel, host, stat: undefined }
  }
}

/**
 * Expands a source that may hold patterns, segment by segment (BuildKit's `ResolveWildcards`):
 * literal segments are taken as they are, pattern segments are matched against the directory's
 * names with {@link goMatch}, in sorted order. Symlinks on the way (and the matches themselves)
 * are followed inside `root`. Returns the resolved matches that exist; `missingParent` is set when
 * the literal part before the first pattern does not exist (BuildKit then fails with "not found").
 */
export function expandGlob(root: string, pattern: string): { matches: GlobMatch[]; missingParent: boolean; base: string } {
  const segs = goClean(pattern).split('/').filter((p) => p !== '' && p !== '.')
  const first = segs.findIndex(hasMeta)
  if (first < 0) {
    const r = resolveInRoot(root, segs.join('/'))
    return { matches: r.stat ? [{ ...r, written: segs.join('/') }] : [], missingParent: false, base: segs.slice(0, -1).join('/') }
  }
  const baseRel = segs.slice(0, first).join('/')
  const base = resolveInRoot(root, baseRel)
  if (!base.stat || !base.stat.isDirectory()) return { matches: [], missingParent: true, base: baseRel }
  let current: Array<{ written: string; dir: Resolved }> = [{ written: baseRel, dir: base }]
  for (let i = first; i < segs.length; i++) {
    const seg = segs[i]!
    const last = i === segs.length - 1
    const next: Array<{ written: string; dir: Resolved }> = []
    for (const c of current) {
      if (!c.dir.stat?.isDirectory()) continue
      let names: string[]
      if (hasMeta(seg)) {
        try {
          names = readdirSync(c.dir.host).sort()
        } catch {
          continue
        }
        names = names.filter((n) => goMatch(seg, n))
      } else {
        names = [seg]
      }
      for (const n of names) {
        const written = c.written ? `${c.written}/${n}` : n
        const r = resolveInRoot(root, c.dir.rel ? `${c.dir.rel}/${n}` : n)
        if (!r.stat) continue
        if (!last && !r.stat.isDirectory()) continue
        next.push({ written, dir: r })
      }
    }
    current = next
  }
  return { matches: current.map((c) => ({ ...c.dir, written: c.written })), missingParent: false, base: baseRel }
}
