/**
 * Source paths as Docker's COPY reads them: Go `filepath.Match` per path segment (`*`, `?`,
 * `[...]` with `^` negation and ranges, `\` escapes), expanded with the sources resolved inside the
 * context by util/resolve-in-root.ts.
 * Everything here is synchronous on purpose: one promise per file costs more than the syscall.
 */
import { readdirSync } from 'node:fs'
import { fsPath, nameFromBytes } from '../util/names.js'
import { resolveInRoot, type RootPath } from '../util/resolve-in-root.js'

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
 *
 * Go's algorithm, on indices rather than copied slices: each star tries every start for the chunk
 * after it without backtracking into earlier stars, so a call costs at most
 * (name length × pattern length) steps.
 */
export function goMatch(pattern: string, name: string): boolean {
  const pat = Array.from(pattern)
  const s = Array.from(name)
  let p = 0
  let at = 0
  outer: while (p < pat.length) {
    const { star, chunkStart, chunkEnd } = scanChunk(pat, p)
    p = chunkEnd
    if (star && chunkStart === chunkEnd) {
      for (let k = at; k < s.length; k++) if (s[k] === '/') return false
      return true
    }
    const m = matchChunk(pat, chunkStart, chunkEnd, s, at, pattern)
    if (m >= 0 && (m === s.length || p < pat.length)) {
      at = m
      continue
    }
    if (star) {
      for (let i = at; i < s.length && s[i] !== '/'; i++) {
        const t = matchChunk(pat, chunkStart, chunkEnd, s, i + 1, pattern)
        if (t >= 0) {
          if (p === pat.length && t < s.length) continue
          at = t
          continue outer
        }
      }
    }
    // Go checks that the rest of the pattern is well-formed before answering false.
    while (p < pat.length) {
      const r = scanChunk(pat, p)
      p = r.chunkEnd
      matchChunk(pat, r.chunkStart, r.chunkEnd, [], 0, pattern)
    }
    return false
  }
  return at === s.length
}

/** The stars at `from` and the chunk after them, up to the next star outside `[…]`. */
function scanChunk(pat: string[], from: number): { star: boolean; chunkStart: number; chunkEnd: number } {
  let p = from
  let star = false
  while (p < pat.length && pat[p] === '*') {
    p++
    star = true
  }
  let inrange = false
  let i = p
  scan: for (; i < pat.length; i++) {
    switch (pat[i]) {
      case '\\':
        if (i + 1 < pat.length) i++
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
  return { star, chunkStart: p, chunkEnd: i }
}

/** Where `s` continues after `pat[c..end)` matched it from `at`, or -1. Throws on a malformed chunk. */
function matchChunk(pat: string[], cStart: number, end: number, s: string[], atIn: number, pattern: string): number {
  let c = cStart
  let at = atIn
  let failed = false
  while (c < end) {
    if (!failed && at >= s.length) failed = true
    const ch = pat[c]!
    if (ch === '[') {
      let r = ''
      if (!failed) r = s[at++]!
      c++
      let negated = false
      if (c < end && pat[c] === '^') {
        negated = true
        c++
      }
      let match = false
      let nrange = 0
      for (;;) {
        if (c < end && pat[c] === ']' && nrange > 0) {
          c++
          break
        }
        const lo = getEsc(pat, c, end, pattern)
        c = lo.next
        let hi = lo.r
        if (pat[c] === '-' && c < end) {
          const h = getEsc(pat, c + 1, end, pattern)
          hi = h.r
          c = h.next
        }
        const rc = r.codePointAt(0) ?? -1
        if (lo.r <= rc && rc <= hi) match = true
        nrange++
      }
      if (match === negated) failed = true
    } else if (ch === '?') {
      if (!failed) {
        if (s[at] === '/') failed = true
        at++
      }
      c++
    } else {
      if (ch === '\\') {
        c++
        if (c >= end) throw new BadPatternError(pattern)
      }
      if (!failed) {
        if (pat[c] !== s[at]) failed = true
        at++
      }
      c++
    }
  }
  return failed ? -1 : at
}

function getEsc(pat: string[], from: number, end: number, pattern: string): { r: number; next: number } {
  let c = from
  if (c >= end || pat[c] === '-' || pat[c] === ']') throw new BadPatternError(pattern)
  if (pat[c] === '\\') {
    c++
    if (c >= end) throw new BadPatternError(pattern)
  }
  const r = pat[c]!.codePointAt(0)!
  c++
  if (c >= end) throw new BadPatternError(pattern)
  return { r, next: c }
}

/** One match of a source: where it resolved to, and its path as written (its name is the last segment). */
export interface GlobMatch extends RootPath {
  readonly written: string
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
  let current: Array<{ written: string; dir: RootPath }> = [{ written: baseRel, dir: base }]
  for (let i = first; i < segs.length; i++) {
    const seg = segs[i]!
    const last = i === segs.length - 1
    const next: Array<{ written: string; dir: RootPath }> = []
    for (const c of current) {
      if (!c.dir.stat?.isDirectory()) continue
      let names: string[]
      if (hasMeta(seg)) {
        try {
          names = readdirSync(fsPath(c.dir.host), { encoding: 'buffer' }).map(nameFromBytes).sort() // names are bytes (util/names.ts)
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
