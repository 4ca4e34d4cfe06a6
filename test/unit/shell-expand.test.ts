import { describe, expect, it } from 'vitest'
import { processWord, processWords, type ShellEnv } from '../../src/shell/expand.js'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'

const word = (w: string, env: ShellEnv = {}): string => processWord(w, env).value

function expansionError(w: string, env: ShellEnv = {}): ImagesmithError {
  try {
    processWord(w, env)
  } catch (e) {
    expect(e).toBeInstanceOf(ImagesmithError)
    expect((e as ImagesmithError).code).toBe(ErrorCodes.EXPANSION_FAILED)
    return e as ImagesmithError
  }
  throw new Error(`expected ${w} to fail`)
}

describe('processWord', () => {
  const env = { SET: 'value', EMPTY: '', HOME: '/root' }

  it('expands $V and ${V}, unset to empty, and parameters that cannot be set to nothing', () => {
    expect(word('$HOME/bin:${SET}x$NOPE.', env)).toBe('/root/bin:valuex.')
    expect(word('a$1b$@c$$d$9z', env)).toBe('abcdz')
    expect(word('$.$', env)).toBe('$.$')
  })

  it('applies -, :-, +, :+ by set / empty / unset', () => {
    const cases: [string, string][] = [
      ['${SET-d}|${EMPTY-d}|${NOPE-d}', 'value||d'],
      ['${SET:-d}|${EMPTY:-d}|${NOPE:-d}', 'value|d|d'],
      ['${SET+a}|${EMPTY+a}|${NOPE+a}', 'a|a|'],
      ['${SET:+a}|${EMPTY:+a}|${NOPE:+a}', 'a||'],
      ['${NOPE:-${HOME:-x}/y}', '/root/y'],
      ['${NOPE:-a b  c}', 'a b  c'],
    ]
    for (const [input, expected] of cases) expect(word(input, env), input).toBe(expected)
  })

  it('? and :? fail with the message, or pass the value through', () => {
    expect(word('${SET?no}${EMPTY?no}', env)).toBe('value')
    expect(word('${SET:?no}', env)).toBe('value')
    expect(expansionError('${NOPE?must be set}', env).details.reason).toBe('NOPE: must be set')
    expect(expansionError('${EMPTY:?}', env).details.reason).toBe('EMPTY: is not allowed to be empty')
    expect(expansionError('${NOPE:?}', env).details.reason).toBe('NOPE: is not allowed to be unset')
  })

  it('removes prefixes and suffixes by pattern (#, ##, %, %%)', () => {
    const files = { F: 'archive.tar.gz', P: '/usr/local/bin', S: 'a*b?c' }
    const cases: [string, string][] = [
      ['${F#*.}', 'tar.gz'],
      ['${F##*.}', 'gz'],
      ['${F%.*}', 'archive.tar'],
      ['${F%%.*}', 'archive'],
      ['${P#/usr}', '/local/bin'],
      ['${P%/*}', '/usr/local'],
      ['${F#nomatch}', 'archive.tar.gz'],
      ['${F#}', 'archive.tar.gz'],
      ['${S#a\\*}', 'b?c'],
      ['${S%\\?c}', 'a*b'],
      ['${F#?r}', 'chive.tar.gz'],
      ['${NOPE#x}', ''],
    ]
    for (const [input, expected] of cases) expect(word(input, files), input).toBe(expected)
    for (const bad of ['${F:#x}', '${F:%x}']) expectError(bad, files)
  })

  it('replaces the first or every match (/, //), with Go replace semantics', () => {
    const env2 = { P: '/a/b/a/c', U: 'http://x.org', E: 'xyz' }
    const cases: [string, string][] = [
      ['${P/a/z}', '/z/b/a/c'],
      ['${P//a/z}', '/z/b/z/c'],
      ['${P//\\//_}', '_a_b_a_c'],
      ['${U/http:\\/\\//https://}', 'https://x.org'],
      ['${P//?\\//-}', '/---c'],
      ['${E///-}', '-x-y-z-'],
      // Go skips an empty match right after a match; String.replace would give '--'.
      ['${E//*/-}', '-'],
      // The replacement keeps its escapes; Go's ReplaceAllString then reads `$0` as the match.
      ['${E//y/[\\$0]}', 'x[\\y]z'],
      ['${E/y/[\\$0]}', 'x[\\$0]z'],
      ['${P///}', '/a/b/a/c'],
    ]
    for (const [input, expected] of cases) expect(word(input, env2), input).toBe(expected)
    expectError('${P//}', env2)
  })

  it('handles quotes and escapes as BuildKit does', () => {
    const cases: [string, string][] = [
      ["'$SET \\x'", '$SET \\x'],
      ['"$SET \\x \\" \\$ \\\\"', 'value \\x " $ \\'],
      ['a\\ b\\$SET', 'a b$SET'],
      ['tail\\', 'tail'],
      ['"${NOPE:-"in"}"', 'in'],
    ]
    for (const [input, expected] of cases) expect(word(input, env), input).toBe(expected)
    expect(processWord('a`$SET`"b`"', env, { escapeToken: '`' }).value).toBe('a$SET"b"')
    expect(processWord('"x`"y"', env, { escapeToken: '`' }).value).toBe('x"y')
    expect(processWord('a\\$SET', env, { escapeToken: '`' }).value).toBe('a\\value')
  })

  it('rejects bad substitutions and open quotes with typed errors', () => {
    for (const bad of ['${}', '${:-x}', '${X:=y}', '${X:Y}', '${X', '${a:-${b}', '"open', "'open", '${X/a'])
      expectError(bad, env)
  })

  it('reports which variables a word used and which were unset', () => {
    const r = processWord('$SET ${EMPTY:-x} ${NOPE:+y} ${HOME#/}', env)
    expect([...r.used].sort()).toEqual(['EMPTY', 'HOME', 'SET'])
    expect([...r.unset]).toEqual(['NOPE'])
  })

  it('leaves unset variables as written with skipUnsetEnv, and keeps quotes with rawQuotes', () => {
    expect(processWord('$NOPE ${NOPE} ${NOPE:-d} $SET', env, { skipUnsetEnv: true }).value).toBe('$NOPE ${NOPE} ${NOPE:-d} value')
    expect(processWord(`"a" 'b'`, env, { rawQuotes: true }).value).toBe(`"a" 'b'`)
  })

  it('takes Map, record and lookup-function environments; names are case-sensitive', () => {
    expect(word('$a$A', new Map([['a', '1']]))).toBe('1')
    expect(word('$a', (n) => (n === 'a' ? 'f' : undefined))).toBe('f')
    expect(word('$toString$constructor', {})).toBe('')
  })
})

describe('processWords', () => {
  it('splits on unquoted whitespace, including whitespace from an unquoted expansion', () => {
    const env = { S: 'a  b', L: '  x y ' }
    expect(processWords('one $S "two $S" th\\ ree', env).words).toEqual(['one', 'a', 'b', 'two a  b', 'th ree'])
    expect(processWords('p${L}q', env).words).toEqual(['p', 'x', 'y', 'q'])
    expect(processWords("'' x", env).words).toEqual(['x'])
  })

  it('keeps BuildKit\'s shared word buffer: text before a ${V:-…} in the same word is dropped', () => {
    // BuildKit's nested word resets the buffer the outer word is being built in.
    expect(processWords('80${P:-/tcp} 443', {}).words).toEqual(['/tcp', '443'])
    expect(processWord('80${P:-/tcp}', {}).value).toBe('80/tcp')
  })
})

describe('expansion limits', () => {
  it('expands ten thousand nested ${…} without recursion', () => {
    const depth = 10_000
    const nested = `${'${A:-'.repeat(depth)}end${'}'.repeat(depth)}`
    expect(processWord(nested, {}).value).toBe('end')
    const open = `${'${A:-'.repeat(depth)}end`
    expectError(open, {})
  })

  it('expands a 1 MB word', () => {
    const big = '$X '.repeat(350_000)
    expect(processWord(big, { X: 'y' }).value).toHaveLength(2 * 350_000)
    expect(processWords(big, { X: 'y' }).words).toHaveLength(350_000)
  })
})

function expectError(w: string, env: ShellEnv): void {
  expansionError(w, env)
}
