/**
 * The shell patterns of `${V#pat}`, `${V%pat}`, `${V/pat/repl}` as BuildKit's lexer evaluates
 * them: `*` and `?` wildcards (no bracket expressions) turned into a regular expression, and Go's
 * `regexp` replace semantics where they differ from JavaScript's.
 */

/**
 * BuildKit's convertShellPatternToRegex. `.` becomes `[^\n]` because Go's `.` only stops at `\n`
 * while JavaScript's also stops at `\r`, U+2028 and U+2029.
 */
export function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const anyChar = '[^\\n]'
  const star = greedy ? `${anyChar}*` : `${anyChar}*?`
  let out = anchored ? '^' : ''
  const chars = Array.from(pattern.startsWith('\uFEFF') ? pattern.slice(1) : pattern)
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i]!
    switch (tok) {
      case '*':
        out += star
        continue
      case '?':
        out += anyChar
        continue
      case '\\': {
        // `}` and `/` are escaped only to get them past the `${…}` lexer.
        const peek = chars[i + 1]
        if (peek === '}' || peek === '/') continue
        out += '\\'
        i++
        tok = chars[i] ?? ''
        if (tok !== '*' && tok !== '?' && tok !== '\\') throw new Error(`invalid escape '\\${tok}'`)
        break
      }
      case '[':
      case ']':
      case '{':
      case '}':
      case '.':
      case '+':
      case '(':
      case ')':
      case '|':
      case '^':
      case '$':
        out += '\\'
        break
    }
    out += tok
  }
  return new RegExp(out, 'u')
}

/** `${V#pat}` / `${V##pat}`: remove the shortest / longest prefix matching the pattern. */
export function trimPatternPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegExp(pattern, greedy, true).exec(value)
  return m ? value.slice(m.index + m[0].length) : value
}

/**
 * `${V%pat}` / `${V%%pat}`: a regular expression cannot find the shortest rightmost match, so
 * both the pattern and the value are reversed and the prefix rule applies (as BuildKit does).
 */
export function trimPatternSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPatternPrefix(reversePattern(pattern), reverseString(value), greedy))
}

/** Reverses a pattern but keeps each `\x` escape in front of its character. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern)
  const out = new Array<string>(chars.length)
  const last = chars.length - 1
  for (let i = 0; i <= last; ) {
    const tok = chars[i]!
    const o = last - i
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok
      out[o] = chars[i + 1]!
      i += 2
    } else {
      out[o] = tok
      i++
    }
  }
  return out.join('')
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('')
}

/** `${V/pat/repl}`: the first match replaced by the replacement, taken literally (Go splices it in). */
export function replaceFirst(re: RegExp, value: string, replacement: string): string {
  const m = re.exec(value)
  if (!m) return value
  return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length)
}

/**
 * `${V//pat/repl}`: Go's Regexp.ReplaceAllString, whose loop differs from String.replace (an empty
 * match right after a match is skipped) and whose template knows `$0`, `${0}`, `$$` and names.
 */
export function replaceAllGo(re: RegExp, src: string, template: string): string {
  const g = new RegExp(re.source, 'gu')
  let out = ''
  let lastMatchEnd = 0
  let searchPos = 0
  while (searchPos <= src.length) {
    g.lastIndex = searchPos
    const m = g.exec(src)
    if (!m) break
    const start = m.index
    const end = start + m[0].length
    out += src.slice(lastMatchEnd, start)
    if (end > lastMatchEnd || start === 0) out += expandTemplate(template, m[0])
    lastMatchEnd = end
    const width = searchPos < src.length ? (src.codePointAt(searchPos)! > 0xffff ? 2 : 1) : 0
    if (searchPos + width > end) searchPos += width
    else if (searchPos + 1 > end) searchPos++
    else searchPos = end
  }
  return out + src.slice(lastMatchEnd)
}

/** Go's Regexp.Expand for a pattern with no capture groups: only group 0 exists. */
function expandTemplate(template: string, match: string): string {
  let out = ''
  let t = template
  for (;;) {
    const at = t.indexOf('$')
    if (at < 0) break
    out += t.slice(0, at)
    t = t.slice(at + 1)
    if (t.startsWith('$')) {
      out += '$'
      t = t.slice(1)
      continue
    }
    const ref = extractRef(t)
    if (!ref) {
      out += '$'
      continue
    }
    t = t.slice(ref.length)
    if (ref.num === 0) out += match
  }
  return out + t
}

/** Go's regexp `extract`: `name` or `{name}` after a `$`; `num` is set when the name is all digits. */
function extractRef(t: string): { length: number; num: number | undefined } | undefined {
  let brace = false
  let s = t
  if (s.startsWith('{')) {
    brace = true
    s = s.slice(1)
  }
  let i = 0
  while (i < s.length) {
    const c = s.codePointAt(i)!
    const ch = String.fromCodePoint(c)
    if (!/[\p{L}\p{Nd}_]/u.test(ch)) break
    i += ch.length
  }
  if (i === 0) return undefined
  const name = s.slice(0, i)
  let length = i
  if (brace) {
    if (s[i] !== '}') return undefined
    length = i + 2
  }
  let num: number | undefined = 0
  for (const ch of name) {
    if (ch < '0' || ch > '9' || num! >= 1e8) {
      num = undefined
      break
    }
    num = num! * 10 + (ch.charCodeAt(0) - 48)
  }
  if (name.length > 1 && name[0] === '0') num = undefined
  return { length, num }
}
