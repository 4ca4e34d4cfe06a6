/**
 * BuildKit's `Node.Dump`: the S-expression form its parser tests compare against, e.g.
 * `(copy ["--from=a"] "src" "/dst")`, `(onbuild (run "echo" "hi"))`. Used by the conformance
 * script and tests; not a printer (that renders Dockerfile text).
 */
import type { Dockerfile, Instruction } from './ast.js'
import { goTrimSpace } from './parser-lines.js'
import { goQuote } from '../util/go-format.js'

/** The whole file: one line per instruction, no final newline (BuildKit's test adds one). */
export function dumpDockerfile(df: Dockerfile): string {
  return df.instructions.map((i) => `(${dumpInstruction(i)})`).join('\n')
}

/** One instruction without its outer parentheses; ONBUILD nests without recursion. */
export function dumpInstruction(instruction: Instruction): string {
  let out = ''
  let depth = 0
  for (let i: Instruction | undefined = instruction; i; i = i.onbuild) {
    let s = i.keywordRaw.toLowerCase()
    if (i.flags.length > 0) s += ` [${i.flags.map((f) => goQuote(f.word)).join(' ')}]`
    if (i.onbuild) {
      out += `${s} (`
      depth++
      continue
    }
    for (const a of i.args) s += ` ${goQuote(a)}`
    out += s
  }
  return goTrimSpace(out + ')'.repeat(depth))
}
