import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseDockerfile } from '../../src/dockerfile/parser.js'
import { dumpDockerfile } from '../../src/dockerfile/parser-dump.js'
import { goQuote } from '../../src/util/go-format.js'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'

const dump = (text: string, strict = true): string => dumpDockerfile(parseDockerfile(text, { strict }))

function parseError(text: string): ImagesmithError {
  try {
    parseDockerfile(text)
  } catch (e) {
    expect(e).toBeInstanceOf(ImagesmithError)
    return e as ImagesmithError
  }
  throw new Error('expected a parse error')
}

describe('parser directives', () => {
  it('reads syntax, check and escape at the top, keys case-insensitive, blanks around =', () => {
    const df = parseDockerfile('# syntax = docker/dockerfile:1\n#CHECK=skip=all\n# Escape = `\nFROM a\nRUN echo `\n  hi\n')
    expect(df.directives.map((d) => [d.name, d.value, d.line])).toEqual([
      ['syntax', 'docker/dockerfile:1', 1],
      ['check', 'skip=all', 2],
      ['escape', '`', 3],
    ])
    expect(df.escapeToken).toBe('`')
    expect(dumpDockerfile(df)).toBe('(from "a")\n(run "echo   hi")')
    expect(df.comments).toEqual([])
  })

  it('stops at the first line that is not a directive (blank line, other comment, unknown key)', () => {
    for (const head of ['\n', '# hello\n', '# foo=bar\n']) {
      const df = parseDockerfile(`${head}# escape=\`\nFROM a\nRUN a \\\n b\n`)
      expect(df.escapeToken).toBe('\\')
      expect(df.directives).toEqual([])
      expect(dumpDockerfile(df)).toBe('(from "a")\n(run "a  b")')
    }
  })

  it('rejects a repeated directive and an escape other than \\ or `', () => {
    const e = parseError('# syntax=a\n# SYNTAX=b\nFROM x\n')
    expect(e.code).toBe(ErrorCodes.DOCKERFILE_SYNTAX)
    expect(e.details).toMatchObject({ line: 2, column: 1, text: '# SYNTAX=b' })
    expect(e.message).toContain('only one syntax parser directive can be used')
    expect(parseError('# escape=x\nFROM a\n').message).toContain('invalid escape token')
  })

  it('with a backtick escape, a backslash is an ordinary character', () => {
    expect(dump('# escape=`\nFROM a\nENV GOPATH `\n\\go\nCOPY C:\\a C:\\b\n')).toBe(
      '(from "a")\n(env "GOPATH" "\\\\go" "")\n(copy "C:\\\\a" "C:\\\\b")',
    )
  })
})

describe('parser lines', () => {
  it('drops comments and skips blank lines inside a continuation, keeping the next lines untrimmed', () => {
    const df = parseDockerfile('FROM a\nRUN apt-get update \\\n# comment\n\n    && apt-get install x \\\n\t\ty\n')
    expect(dumpDockerfile(df)).toBe('(from "a")\n(run "apt-get update     && apt-get install x \\t\\ty")')
    const run = df.instructions[1]!
    expect(run.range).toEqual({ start: { line: 2, column: 1 }, end: { line: 6, column: 4 } })
    expect(df.comments).toEqual([{ text: 'comment', raw: '# comment', line: 3, inContinuation: true }])
    expect(df.warnings).toEqual([{ message: expect.stringContaining('Empty continuation line'), line: 6 }])
  })

  it('an escaped escape does not continue; a continuation may run into the end of the file', () => {
    expect(dump('FROM a\nRUN echo foo\\\\\nRUN b \\')).toBe('(from "a")\n(run "echo foo\\\\\\\\")\n(run "b")')
  })

  it('takes keywords in any case and keeps how they were written', () => {
    const df = parseDockerfile('from a AS b\nrUn x\n')
    expect(df.instructions.map((i) => [i.keyword, i.keywordRaw])).toEqual([
      ['FROM', 'from'],
      ['RUN', 'rUn'],
    ])
    expect(df.instructions[0]!.args).toEqual(['a', 'AS', 'b'])
  })

  it('reads CRLF files and drops a UTF-8 byte order mark', () => {
    const df = parseDockerfile(Buffer.from('\uFEFF# syntax=x\r\nFROM a\r\nRUN a \\\r\n  b\r\n'))
    expect(df.bom).toBe(true)
    expect(df.crlf).toBe(true)
    expect(df.directives).toHaveLength(1)
    expect(dumpDockerfile(df)).toBe('(from "a")\n(run "a   b")')
  })

  it('keeps the comments right before an instruction (a bare # clears them) and every comment of the file', () => {
    const df = parseDockerfile('# one\n\n# two\nFROM a\n# three\n#\n# four\nRUN x\n# trailing\n')
    expect(df.instructions.map((i) => i.comments)).toEqual([['one', 'two'], ['four']])
    expect(df.comments.map((c) => c.line)).toEqual([1, 3, 5, 6, 7, 9])
  })

  it('gives each instruction its source text, logical line and range', () => {
    const df = parseDockerfile('FROM a\n  RUN x \\\n   y\n')
    const run = df.instructions[1]!
    expect(run.source).toBe('  RUN x \\\n   y')
    expect(run.original).toBe('RUN x    y')
    expect(run.range).toEqual({ start: { line: 2, column: 3 }, end: { line: 3, column: 5 } })
  })
})

describe('parser forms', () => {
  it('exec form when the rest is a JSON array of strings, shell form otherwise', () => {
    const df = parseDockerfile('FROM a\nCMD ["echo", "a\\/b", "\\u0000"]\nCMD [\'x\']\nENTRYPOINT ["a" \nCMD []\nSHELL ["/bin/sh", "-c"]\n')
    expect(df.instructions.slice(1).map((i) => [i.json, i.args])).toEqual([
      [true, ['echo', 'a/b', '\u0000']],
      [false, ["['x']"]],
      [false, ['["a"']],
      [true, []],
      [true, ['/bin/sh', '-c']],
    ])
  })

  it('rejects a valid JSON array holding a non-string, at its line and column', () => {
    const e = parseError('FROM a\n\nCMD [ "echo", [ "nested" ] ]\n')
    expect(e.code).toBe(ErrorCodes.DOCKERFILE_SYNTAX)
    expect(e.details).toMatchObject({ line: 3, column: 5, text: 'CMD [ "echo", [ "nested" ] ]' })
    expect(e.message).toContain('arrays must be comprised of strings only')
  })

  it('splits COPY/ADD/VOLUME words in shell form and takes their JSON form', () => {
    expect(dump('FROM a\nCOPY ["a b", "/c"]\nADD x\ty  /z\nVOLUME ["/v"]\nVOLUME /a /b\n')).toBe(
      '(from "a")\n(copy "a b" "/c")\n(add "x" "y" "/z")\n(volume "/v")\n(volume "/a" "/b")',
    )
  })

  it('ENV and LABEL as key/value pairs, old form included; ARG words raw', () => {
    const df = parseDockerfile('FROM a\nENV A=1 B="x y" C=\nENV D 1 2 3\nLABEL "k"=v\nARG abc="1 2" def\n')
    expect(df.instructions[1]!.pairs).toEqual([
      { key: 'A', value: '1', separator: '=' },
      { key: 'B', value: '"x y"', separator: '=' },
      { key: 'C', value: '', separator: '=' },
    ])
    expect(df.instructions[2]!.pairs).toEqual([{ key: 'D', value: '1 2 3', separator: '' }])
    expect(df.instructions[3]!.args).toEqual(['"k"', 'v', '='])
    expect(df.instructions[4]!.args).toEqual(['abc="1 2"', 'def'])
    expect(parseError('FROM a\nENV PATH\n').message).toContain('ENV must have two arguments')
    expect(parseError('FROM a\nENV A=1 B\n').message).toContain("can't find = in")
  })

  it('FROM … AS name, ONBUILD with its trigger, MAINTAINER, HEALTHCHECK types', () => {
    const df = parseDockerfile(
      'FROM --platform=linux/arm64 img:1 as build\nONBUILD COPY --from=build ["a", "b"]\nMAINTAINER Jane <j@x>\nHEALTHCHECK NONE\nHEALTHCHECK --retries=3 CMD curl -f x\n',
    )
    expect(dumpDockerfile(df)).toBe(
      [
        '(from ["--platform=linux/arm64"] "img:1" "as" "build")',
        '(onbuild (copy ["--from=build"] "a" "b"))',
        '(maintainer "Jane <j@x>")',
        '(healthcheck "NONE")',
        '(healthcheck ["--retries=3"] "CMD" "curl -f x")',
      ].join('\n'),
    )
    const onbuild = df.instructions[1]!
    expect(onbuild.onbuild).toMatchObject({ keyword: 'COPY', json: true, args: ['a', 'b'], original: 'COPY --from=build ["a", "b"]' })
  })
})

describe('parser byte-level quirks kept from BuildKit', () => {
  it('HEALTHCHECK ends its type at a 0x85/0xA0 byte and skips only ASCII blanks after it', () => {
    const df = parseDockerfile('FROM a\nHEALTHCHECK CMD\u00a0curl x\nHEALTHCHECK CMD \u00a0curl x\n')
    expect(df.instructions[1]!.args).toEqual(['CMD\uFFFD', 'curl x'])
    expect(df.instructions[2]!.args).toEqual(['CMD', '\u00a0curl x'])
  })

  it('flag words read bytes as Latin-1, as BuildKit hands them to the instruction', () => {
    const flag = parseDockerfile('FROM a\nCOPY --chown=jürgen x y\n').instructions[1]!.flags[0]!
    expect([flag.value, flag.raw]).toEqual(['jÃ¼rgen', '--chown=jürgen'])
  })
})

describe('parser flags', () => {
  it('reads every flag BuildKit knows, with value and raw text', () => {
    const df = parseDockerfile(
      [
        'FROM --platform=$BUILDPLATFORM a',
        'COPY --from=b --chown=1:2 --chmod=0755 --link --exclude=*.md --exclude=x --parents src /d/',
        'ADD --checksum=sha256:00 --keep-git-dir=true --link=false https://github.com/a/b.git#v1 /src',
        'RUN --mount=type=ssh --mount=type=cache,target=/c --network=none --security=insecure echo',
        'HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --start-interval=2s --retries=3 CMD true',
        'COPY --chown="user name" -- --not-a-flag /d',
      ].join('\n'),
    )
    const flags = df.instructions.map((i) => i.flags.map((f) => [f.name, f.value]))
    expect(flags).toEqual([
      [['platform', '$BUILDPLATFORM']],
      [['from', 'b'], ['chown', '1:2'], ['chmod', '0755'], ['link', undefined], ['exclude', '*.md'], ['exclude', 'x'], ['parents', undefined]],
      [['checksum', 'sha256:00'], ['keep-git-dir', 'true'], ['link', 'false']],
      [['mount', 'type=ssh'], ['mount', 'type=cache,target=/c'], ['network', 'none'], ['security', 'insecure']],
      [['interval', '5s'], ['timeout', '3s'], ['start-period', '1s'], ['start-interval', '2s'], ['retries', '3']],
      [['chown', 'user name']],
    ])
    expect(df.instructions[5]!.flags[0]!.raw).toBe('--chown="user name"')
    expect(df.instructions[5]!.args).toEqual(['--not-a-flag', '/d'])
  })

  it('rejects unknown, repeated and malformed flags at their column', () => {
    const cases: [string, string, number][] = [
      ['FROM a\nCOPY --form=b x y\n', 'unknown flag: --form (did you mean from?)', 6],
      ['FROM a\nCOPY --from=a --from=b x y\n', 'duplicate flag specified: --from', 15],
      ['FROM a\nCOPY --link= x y\n', 'missing a value on flag: --link', 6],
      ['FROM a\nCOPY --link=maybe x y\n', 'expecting boolean value for flag --link, not: maybe', 6],
      ['FROM a\nRUN --network echo\n', 'missing a value on flag: --network', 5],
      ['FROM a\nENV --x=1 a=b\n', 'unknown flag: --x', 5],
      ['FROM a\nRUN a \\\n  --b\nRUN --bad x\n', 'unknown flag: --bad', 5],
    ]
    for (const [text, message, column] of cases) {
      const e = parseError(text)
      expect(e.code).toBe(ErrorCodes.DOCKERFILE_SYNTAX)
      expect(e.details.reason).toBe(message)
      expect(e.details.column).toBe(column)
    }
  })

  it('leaves flags unchecked where BuildKit does (ARG, STOPSIGNAL, HEALTHCHECK NONE) and when not strict', () => {
    expect(() => parseDockerfile('FROM a\nARG --x=1 y\nSTOPSIGNAL --z 9\nHEALTHCHECK --foo NONE\n')).not.toThrow()
    expect(dump('FROM a\nCOPY --user=me x y\n', false)).toBe('(from "a")\n(copy ["--user=me"] "x" "y")')
  })
})

describe('parser heredocs', () => {
  it('reads several bodies in order, quoted delimiters, <<- and file descriptors', () => {
    const text = [
      'FROM a',
      'COPY <<robots.txt <<"humans.txt" /d/',
      'User-agent: $X',
      'robots.txt',
      'we',
      'humans.txt',
      'RUN 3<<-EOF cat <&3',
      '\t\tindented',
      '\tEOF',
      'RUN <<E"O"F bash',
      'echo $HOME',
      'EOF',
      "RUN cat<<EOF '<<NOT' <<EOF>out",
      'x',
      'EOF>out',
    ].join('\n')
    const df = parseDockerfile(text)
    const docs = df.instructions.map((i) => i.heredocs.map((h) => [h.name, h.expand, h.chomp, h.fileDescriptor, h.content]))
    expect(docs).toEqual([
      [],
      [
        ['robots.txt', true, false, 0, 'User-agent: $X\n'],
        ['humans.txt', false, false, 0, 'we\n'],
      ],
      [['EOF', true, true, 3, '\t\tindented\n']],
      [['EOF', false, false, 0, 'echo $HOME\n']],
      [['EOF>out', true, false, 0, 'x\n']],
    ])
    expect(df.instructions[1]!.range.end.line).toBe(6)
    expect(df.instructions[1]!.heredocs[1]!.range).toEqual({ start: { line: 5, column: 1 }, end: { line: 6, column: 11 } })
  })

  it('only RUN, COPY and ADD (also as ONBUILD triggers) in shell form take heredocs', () => {
    const df = parseDockerfile('FROM a\nONBUILD RUN <<EOF\nx\nEOF\nCMD <<EOF\nRUN ["<<EOF"]\n')
    expect(df.instructions[1]!.onbuild!.heredocs.map((h) => h.content)).toEqual(['x\n'])
    expect(df.instructions.map((i) => i.keyword)).toEqual(['FROM', 'ONBUILD', 'CMD', 'RUN'])
  })

  it('reports an unterminated heredoc at its instruction', () => {
    const e = parseError('FROM a\nRUN <<EOF\necho\neof\n')
    expect(e.details).toMatchObject({ line: 2, column: 1, text: 'RUN <<EOF', reason: 'unterminated heredoc' })
  })
})

describe('parser errors', () => {
  it('names an unknown instruction with line, column and the quoted line', () => {
    const e = parseError('FROM a\n\n   FORM b\n')
    expect(e.code).toBe(ErrorCodes.UNKNOWN_INSTRUCTION)
    expect(e.details).toMatchObject({ line: 3, column: 4, text: '   FORM b', instruction: 'FORM' })
    expect(e.message).toBe('Dockerfile:3:4: unknown instruction: FORM (did you mean FROM?)\n    3 |    FORM b')
  })

  it('keeps unknown words as BuildKit\'s parser does when not strict', () => {
    expect(dump('FROM a\nFROB x y\n', false)).toBe('(from "a")\n(frob "")')
  })

  it('rejects a file without instructions and a line over BuildKit\'s 64 KiB scanner limit', () => {
    expect(parseError('').details.reason).toBe('file with no instructions')
    expect(parseError('# just a comment\n\n').details.reason).toBe('file with no instructions')
    const e = parseError(`FROM a\nRUN ${'x'.repeat(70_000)}\n`)
    expect(e.details).toMatchObject({ line: 2, reason: 'dockerfile line greater than max allowed size of 65535' })
  })
})

describe('Go quoting of the dump', () => {
  it('follows strconv.Quote, not JSON', () => {
    expect(goQuote('a"b\\c\u0000\u0007\u000b\u007f\n\t♥\u00a0\u200b')).toBe('"a\\"b\\\\c\\x00\\a\\v\\x7f\\n\\t♥\\u00a0\\u200b"')
  })
})

describe('fixtures for what the corpus lacks', () => {
  const fixture = (name: string) => parseDockerfile(readFileSync(join(import.meta.dirname, '../fixtures/dockerfile', name)))

  it('RUN --network/--security, ADD --checksum and a git URL with --keep-git-dir, COPY --parents/--exclude, heredocs', () => {
    const df = fixture('heredocs.Dockerfile')
    expect(dumpDockerfile(df)).toBe(
      [
        '(from "debian:bookworm-slim")',
        '(run "<<EOF")',
        '(run "3<<-\'SCRIPT\' bash /dev/fd/3")',
        '(copy "<<config.json" "<<\\"notes.txt\\"" "/etc/app/")',
        '(add ["--checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d"] "https://example.com/file.tar.gz" "/tmp/")',
        '(add ["--keep-git-dir=true"] "https://github.com/moby/buildkit.git#v0.13.0" "/src/buildkit")',
        '(copy ["--parents" "--exclude=*.md" "--exclude=docs/"] "./a/" "./b/" "/dst/")',
        '(run ["--security=insecure" "--network=host"] "cat <<A <<B > /out")',
      ].join('\n'),
    )
    expect(df.instructions.map((i) => i.heredocs.map((h) => `${h.fileDescriptor}:${h.name}:${h.expand}:${h.chomp}:${JSON.stringify(h.content)}`))).toEqual([
      [],
      ['0:EOF:true:false:"set -e\\napt-get update\\napt-get install -y curl\\n"'],
      ['3:SCRIPT:false:true:"\\techo \\"no $expansion here\\"\\n"'],
      ['0:config.json:true:false:"{\\"name\\": \\"$NAME\\"}\\n"', '0:notes.txt:false:false:"plain $TEXT\\n"'],
      [],
      [],
      [],
      ['0:A:true:false:"a\\n"', '0:B:true:false:"b\\n"'],
    ])
  })

  it('RUN --mount=type=ssh and the rest of a multi-stage file', () => {
    const df = fixture('multistage.Dockerfile')
    expect(df.directives.map((d) => d.name)).toEqual(['syntax', 'check'])
    const run = df.instructions.find((i) => i.keyword === 'RUN')!
    expect(run.flags.map((f) => f.word)).toEqual(['--mount=type=cache,target=/root/.cache/go-build', '--mount=type=ssh,id=default', '--network=none'])
    expect(run.args).toEqual(['go build -o /out/app ./cmd/app'])
    expect(df.comments.find((c) => c.inContinuation)?.text).toBe('fetch nothing: the cache is warm')
    expect(df.instructions.filter((i) => i.keyword === 'FROM').map((i) => i.args)).toEqual([['${BASE}', 'AS', 'build'], ['scratch']])
  })

  it('ONBUILD heredocs and flags, backtick escape with Windows paths, CMD []', () => {
    const df = fixture('onbuild.Dockerfile')
    expect(dumpDockerfile(df)).toBe(
      [
        '(from "mcr.microsoft.com/windows/servercore:ltsc2022")',
        '(shell "powershell" "-Command" "$ErrorActionPreference = \'Stop\';")',
        '(env "GOPATH" "C:\\\\go" "")',
        '(run "Write-Host \'one\';     Write-Host \'two\'")',
        '(onbuild (copy ["--from=builder"] "C:\\\\src" "C:\\\\dst"))',
        '(onbuild (run "<<EOF"))',
        '(onbuild (run ["--mount=type=secret,id=token"] "cat /run/secrets/token"))',
        '(maintainer "Someone <someone@example.com>")',
        '(volume "C:\\\\data")',
        '(cmd)',
      ].join('\n'),
    )
    expect(df.instructions[5]!.onbuild!.heredocs.map((h) => h.content)).toEqual(['echo "triggered"\n'])
  })

  it('CRLF line ends and a byte order mark', () => {
    const df = fixture('crlf-bom.Dockerfile')
    expect([df.bom, df.crlf, df.directives[0]?.value]).toEqual([true, true, 'docker/dockerfile:1'])
    expect(dumpDockerfile(df)).toBe('(from "busybox")\n(run "echo a   && echo b")\n(workdir "/w")\n(env "A" "1 2 3" "")')
  })
})
