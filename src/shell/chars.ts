/** Character classes as Go's `unicode` package and BuildKit's lexer define them. */

/** Go's unicode.IsSpace. */
export function isGoSpace(c: number): boolean {
  if (c <= 0xff) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0x85 || c === 0xa0
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000
}

const LETTER = /\p{L}/u
const DIGIT = /\p{Nd}/u
export function isLetter(c: number): boolean {
  return c < 0x80 ? (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) : LETTER.test(String.fromCodePoint(c))
}
export function isDigit(c: number): boolean {
  return c < 0x80 ? c >= 0x30 && c <= 0x39 : DIGIT.test(String.fromCodePoint(c))
}
export function isSpecialParam(c: number): boolean {
  // @ * # ? - $ ! 0
  return c === 0x40 || c === 0x2a || c === 0x23 || c === 0x3f || c === 0x2d || c === 0x24 || c === 0x21 || c === 0x30
}
export function chr(c: number): string {
  // Go's string(rune) of EOF (-1) is U+FFFD.
  return c < 0 ? '\uFFFD' : String.fromCodePoint(c)
}
