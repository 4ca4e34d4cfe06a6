/**
 * Go's fmt verbs as BuildKit uses them in history `created_by` strings, so `docker history` reads the
 * same for an image built here as for one built by BuildKit.
 */

/**
 * Go's strconv.Quote (`%q`), which BuildKit's history strings, its AST dump and several of its parser
 * messages use: `\a \b \f \n \r \t \v` short forms, `\xNN` for other control bytes and DEL,
 * `\uNNNN` / `\UNNNNNNNN` for other non-printable characters, printable Unicode kept.
 */
export function goQuote(s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '"') out += '\\"'
    else if (ch === '\\') out += '\\\\'
    else if (c >= 0x20 && c < 0x7f) out += ch
    else if (c === 7) out += '\\a'
    else if (c === 8) out += '\\b'
    else if (c === 12) out += '\\f'
    else if (c === 10) out += '\\n'
    else if (c === 13) out += '\\r'
    else if (c === 9) out += '\\t'
    else if (c === 11) out += '\\v'
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'
    else if (GO_PRINTABLE.test(ch)) out += ch
    else if (c < 0x10000) out += `\\u${c.toString(16).padStart(4, '0')}`
    else out += `\\U${c.toString(16).padStart(8, '0')}`
  }
  return `${out}"`
}

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols (and ASCII space, handled above). */
const GO_PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u

/** `%q` of a []string: `["a" "b"]` */
export function goQuoteList(list: readonly string[]): string {
  return `[${list.map(goQuote).join(' ')}]`
}

/** `%v` of a []string: `[a b]` */
export function goList(list: readonly string[]): string {
  return `[${list.join(' ')}]`
}

/** `%v` of a map[string]struct{}: keys sorted, `map[80/tcp:{} 90/udp:{}]` */
export function goSet(keys: Iterable<string>): string {
  return `map[${[...keys].sort().map((k) => `${k}:{}`).join(' ')}]`
}

/** time.Duration.String() of nanoseconds */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s'
  const neg = ns < 0
  let n = Math.abs(ns)
  let out: string
  if (n < 1e3) out = `${n}ns`
  else if (n < 1e6) out = `${trim(n / 1e3)}µs`
  else if (n < 1e9) out = `${trim(n / 1e6)}ms`
  else {
    const h = Math.floor(n / 3600e9)
    n -= h * 3600e9
    const m = Math.floor(n / 60e9)
    n -= m * 60e9
    const s = `${trim(n / 1e9)}s`
    out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s
  }
  return neg ? `-${out}` : out
}

function trim(x: number): string {
  return String(Number(x.toFixed(9)))
}

/** `%q` of an int: Go prints it as a quoted rune, e.g. 3 → '\x03'. */
export function goQuoteRune(n: number): string {
  if (n >= 0x20 && n < 0x7f && n !== 0x27 && n !== 0x5c) return `'${String.fromCharCode(n)}'`
  if (n === 0x27) return "'\\''"
  if (n === 0x5c) return "'\\\\'"
  if (n < 0x80) return `'\\x${n.toString(16).padStart(2, '0')}'`
  return `'${String.fromCodePoint(n)}'`
}
