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
