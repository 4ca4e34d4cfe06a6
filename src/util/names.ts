/**
 * File names are bytes on Linux; entry paths are JS strings. The mapping between the two is
 * "surrogateescape" (Python's os.fsdecode, PEP 383): a name that is valid UTF-8 is its plain
 * decoded string, and each byte of a name that is not valid UTF-8 becomes the lone low surrogate
 * U+DC00 + byte (only 0x80–0xFF occur). Valid UTF-8 never decodes to a lone surrogate, so the
 * mapping is one-to-one and {@link nameBytes} gives back the exact bytes {@link nameFromBytes} read.
 *
 * Node's fs decodes names as UTF-8 with U+FFFD for bad bytes, which loses them: every walk asks for
 * `encoding: 'buffer'` and decodes with {@link nameFromBytes}; every fs call on an entry path goes
 * through {@link fsPath}; the tar writer and the sort write {@link nameBytes}.
 */

const strict = new TextDecoder('utf-8', { fatal: true })

/** A lone U+DC80–U+DCFF (not the second half of a surrogate pair): an escaped raw byte. */
const ESCAPED = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/

/** The string form of a name (or path) read from the filesystem as bytes. */
export function nameFromBytes(b: Uint8Array): string {
  let ascii = true
  for (let i = 0; i < b.length; i++) {
    if (b[i]! >= 0x80) {
      ascii = false
      break
    }
  }
  if (ascii) return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1')
  try {
    return strict.decode(b)
  } catch {
    return escapeDecode(b)
  }
}

/** The exact bytes of a name or path in the string form of {@link nameFromBytes}. */
export function nameBytes(s: string): Buffer {
  if (!ESCAPED.test(s)) return Buffer.from(s, 'utf8')
  const parts: Buffer[] = []
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xdc80 && c <= 0xdcff && !(i > 0 && isHigh(s.charCodeAt(i - 1)))) {
      if (i > start) parts.push(Buffer.from(s.slice(start, i), 'utf8'))
      parts.push(Buffer.of(c - 0xdc00))
      start = i + 1
    }
  }
  if (start < s.length) parts.push(Buffer.from(s.slice(start), 'utf8'))
  return Buffer.concat(parts)
}

/** Whether `s` is ASCII: its UTF-8 bytes, its latin1 bytes and its code units are then the same. */
export function isAscii(s: string): boolean {
  return ASCII.test(s)
}

const ASCII = /^[\x00-\x7f]*$/

/** Whether `s` holds escaped raw bytes (then only its Buffer form names the file). */
export function hasRawBytes(s: string): boolean {
  return ESCAPED.test(s)
}

/** What to hand to Node's fs for a host path in string form: the string itself, or its bytes. */
export function fsPath(s: string): string | Buffer {
  return ESCAPED.test(s) ? nameBytes(s) : s
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff

/** UTF-8 decoding that keeps every well-formed sequence and escapes every other byte. */
function escapeDecode(b: Uint8Array): string {
  let out = ''
  let i = 0
  while (i < b.length) {
    const n = seqLength(b, i)
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + b[i]!)
      i++
    } else {
      out += strict.decode(b.subarray(i, i + n))
      i += n
    }
  }
  return out
}

/** Length of the well-formed UTF-8 sequence at `i` (Unicode Table 3-7), or 0. */
function seqLength(b: Uint8Array, i: number): number {
  const c = b[i]!
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi
  if (c < 0x80) return 1
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0 // no UTF-16 surrogates
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0
  return 0
}
