import { StringDecoder } from 'node:string_decoder'

/**
 * A step's output cut at line ends, per step and stream: a program writes a line in pieces (`set -x`
 * writes `+ ` and the command apart; a download prints dots), and a line printed per piece reads as
 * several. A partial line waits for its end, at most `flushMs` (then it is printed as it is, as
 * BuildKit's plain progress does), and is printed when its step ends.
 */
export class LineBuffer {
  readonly #partial = new Map<string, { decoder: StringDecoder; text: string; timer?: NodeJS.Timeout }>()
  readonly #emit: (vertex: string, line: string) => void
  readonly #flushMs: number

  constructor(emit: (vertex: string, line: string) => void, flushMs: number) {
    this.#emit = emit
    this.#flushMs = flushMs
  }

  push(vertex: string, stream: string, data: Buffer): void {
    const key = `${vertex}\0${stream}`
    let p = this.#partial.get(key)
    if (!p) {
      // UTF-8 split across chunks is joined before it is decoded.
      p = { decoder: new StringDecoder('utf8'), text: '' }
      this.#partial.set(key, p)
    }
    const text = p.text + p.decoder.write(data)
    const end = text.lastIndexOf('\n')
    if (end >= 0) for (const line of text.slice(0, end).split('\n')) this.#emit(vertex, line.replace(/\r$/, ''))
    p.text = end >= 0 ? text.slice(end + 1) : text
    if (p.text === '') {
      if (p.timer) clearTimeout(p.timer)
      p.timer = undefined
    } else p.timer ??= setTimeout(() => this.#flushKey(key), this.#flushMs)
  }

  /** Prints what is left of `vertex`'s lines (its step ended). */
  flush(vertex: string): void {
    for (const key of this.#partial.keys()) if (key.startsWith(`${vertex}\0`)) this.#flushKey(key)
  }

  flushAll(): void {
    for (const key of [...this.#partial.keys()]) this.#flushKey(key)
  }

  #flushKey(key: string): void {
    const p = this.#partial.get(key)
    if (!p) return
    if (p.timer) clearTimeout(p.timer)
    p.timer = undefined
    const rest = p.text + p.decoder.end()
    p.decoder = new StringDecoder('utf8')
    p.text = ''
    if (rest !== '') this.#emit(key.slice(0, key.indexOf('\0')), rest.replace(/\r$/, ''))
  }
}
