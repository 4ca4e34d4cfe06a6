/**
 * Go's strconv.Quote, which BuildKit's AST dump and several of its parser messages use:
 * `\a \b \f \n \r \t \v` short forms, `\xNN` for other control bytes and DEL, `\uNNNN` /
 * `\UNNNNNNNN` for other non-printable characters, printable Unicode kept.
 */
export function goStrconvQuote(s: string): string {
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
