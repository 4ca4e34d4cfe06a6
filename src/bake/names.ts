/** True when a requested name is a pattern (buildx: it holds one of `*?[]`). */
export function isPattern(s: string): boolean {
  return /[*?[\]]/.test(s)
}

/** The names a pattern matches, in the order given. */
export function matchNames(pattern: string, names: readonly string[]): string[] {
  return names.filter((n) => globMatch(pattern, n))
}

/**
 * Go's `path.Match` over target names (which hold no `/`): `*` any run, `?` one character, `[a-z]`,
 * `[^…]` classes, `\` escaping. Iterative, remembering only the last `*`: O(pattern × name), no regex.
 */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0
  let n = 0
  let starP = -1
  let starN = 0
  while (n < name.length) {
    if (p < pattern.length && pattern[p] === '*') {
      starP = p++
      starN = n
      continue
    }
    const step = p < pattern.length ? matchOne(pattern, p, name[n]!) : -1
    if (step > 0) {
      p += step
      n++
    } else if (starP >= 0) {
      p = starP + 1
      n = ++starN
    } else return false
  }
  while (p < pattern.length && pattern[p] === '*') p++
  return p === pattern.length
}

/** How many pattern characters matched `c` at `p` (0: no match; a malformed class never matches). */
function matchOne(pattern: string, p: number, c: string): number {
  const t = pattern[p]!
  if (t === '?') return 1
  if (t === '\\') return pattern[p + 1] === c ? 2 : 0
  if (t !== '[') return t === c ? 1 : 0
  let i = p + 1
  const negate = pattern[i] === '^'
  if (negate) i++
  let hit = false
  let first = true
  while (i < pattern.length && (first || pattern[i] !== ']')) {
    first = false
    let lo = pattern[i]!
    if (lo === '\\') lo = pattern[++i] ?? ''
    let hi = lo
    if (pattern[i + 1] === '-' && pattern[i + 2] !== undefined && pattern[i + 2] !== ']') {
      hi = pattern[i + 2] === '\\' ? (pattern[i + 3] ?? '') : pattern[i + 2]!
      i += pattern[i + 2] === '\\' ? 3 : 2
    }
    if (lo <= c && c <= hi) hit = true
    i++
  }
  if (i >= pattern.length) return 0
  return hit !== negate ? i + 1 - p : 0
}
