import { describe, expect, it } from 'vitest'
import { fromDockerfile, image, isImagesmithError, toDockerfile, type ImageBuilder } from '../../src/index.js'

describe('toDockerfile', () => {
  it('one stage: FROM, exec-form CMD/ENTRYPOINT, quoted ENV/LABEL, JSON COPY for spaces', () => {
    const b = image().from('busybox:1.36').workdir('/srv').copy(['a b.txt', 'c'], './').env({ GREETING: 'hello world', PLAIN: 'x' })
      .label('org.example/say', 'he said "hi"').entrypoint(['/bin/sh', '-c']).cmd(['echo', '$HOME']).user('1000:1000').expose(8080).stopSignal('SIGINT')
    expect(toDockerfile(b)).toBe([
      'FROM busybox:1.36',
      'WORKDIR /srv',
      'COPY ["a b.txt", "c", "./"]',
      'ENV GREETING="hello world" PLAIN=x',
      'LABEL org.example/say="he said \\"hi\\""',
      'ENTRYPOINT ["/bin/sh", "-c"]',
      'CMD ["echo", "$HOME"]',
      'USER 1000:1000',
      'EXPOSE 8080/tcp',
      'STOPSIGNAL SIGINT',
      '',
    ].join('\n'))
  })

  it('multi-stage: dependencies first, each once (same object or same steps), named; --from and FROM use the names', () => {
    const base = image().from('busybox').run('echo base > /b')
    const sameAsBase = image().from('busybox').run('echo base > /b')
    const tools = image().from(base).run('echo tools > /t')
    const app = image().from(base).copy('/t', '/t', { from: tools }).copy('/b', '/b2', { from: sameAsBase })
      .run('cat /mnt/t', { mounts: [{ type: 'bind', target: '/mnt', from: tools }] })
    expect(toDockerfile(app)).toBe([
      'FROM busybox AS stage-1',
      'RUN echo base > /b',
      '',
      'FROM stage-1 AS stage-2',
      'RUN echo tools > /t',
      '',
      'FROM stage-1',
      'COPY --from=stage-2 /t /t',
      'COPY --from=stage-1 /b /b2',
      'RUN --mount=type=bind,target=/mnt,from=stage-2 cat /mnt/t',
      '',
    ].join('\n'))
  })

  it('heredoc for a multi-line script, with the syntax directive; SHELL carries into exec-form fallbacks of later stages', () => {
    const sh = image().from('busybox').shell(['/bin/ash', '-eo', 'pipefail', '-c'])
    const b = image().from(sh).run('set -e\necho one\n').cmd('printf "a\\nb"\ntrue')
    expect(toDockerfile(b)).toBe([
      '# syntax=docker/dockerfile:1',
      'FROM busybox AS stage-1',
      'SHELL ["/bin/ash", "-eo", "pipefail", "-c"]',
      '',
      'FROM stage-1',
      "RUN <<'EOF'",
      'set -e',
      'echo one',
      'EOF',
      'CMD ["/bin/ash", "-eo", "pipefail", "-c", "printf \\"a\\\\nb\\"\\ntrue"]',
      '',
    ].join('\n'))
  })

  it('ARG, ONBUILD, MAINTAINER, HEALTHCHECK, VOLUME, ADD flags, COPY --chown/--chmod/--exclude/--link', () => {
    const b = image().from('scratch').arg('VERSION', '1.0').arg('FLAG').onBuild('RUN make').maintainer('Jo <jo@example.com>')
      .healthcheck({ test: 'wget -q localhost || exit 1', interval: '10s', startPeriod: '1m' }).volume(['/data', '/logs'])
      .add('https://example.com/f.tgz', '/f.tgz', { checksum: `sha256:${'a'.repeat(64)}` }).add('x.tar', '/x/', { unpack: false })
      .copy('src/', '/app/', { chown: 'app:app', chmod: 0o644, exclude: ['*.md', 'test/'], link: true })
    expect(toDockerfile(b, { syntaxDirective: false }).split('\n')).toEqual([
      'FROM scratch',
      'ARG VERSION=1.0',
      'ARG FLAG',
      'ONBUILD RUN make',
      'MAINTAINER Jo <jo@example.com>',
      'HEALTHCHECK --interval=10s --start-period=1m0s CMD wget -q localhost || exit 1',
      'VOLUME ["/data", "/logs"]',
      `ADD --checksum=sha256:${'a'.repeat(64)} https://example.com/f.tgz /f.tgz`,
      'ADD --unpack=false x.tar /x/',
      'COPY --chown=app:app --chmod=644 --exclude=*.md --exclude=test/ --link src/ /app/',
      '',
    ])
  })

  it('local image references: written as-is under a comment by default; NOT_REPRESENTABLE with localRefs: error', () => {
    const b = image().from('oci-archive:/tmp/base.tar').copy('/x', '/x', { from: 'oci:/tmp/layout:v1' })
    const text = toDockerfile(b)
    expect(text).toContain('# oci-archive:/tmp/base.tar is a local image (buildah, podman and imagesmith read it')
    expect(text).toContain('\nFROM oci-archive:/tmp/base.tar\n')
    expect(text).toContain('COPY --from=oci:/tmp/layout:v1 /x /x')
    let err: unknown
    try { toDockerfile(b, { localRefs: 'error' }) } catch (e) { err = e }
    expect(isImagesmithError(err) && [err.code, err.details.ref]).toEqual(['NOT_REPRESENTABLE', 'oci-archive:/tmp/base.tar'])
  })

  it('a value with no Dockerfile spelling is refused with NOT_REPRESENTABLE', () => {
    for (const b of [image().from('scratch').env('A', 'x\ny'), image().from('scratch').healthcheck({ test: 'a\nb' })]) {
      let err: unknown
      try { toDockerfile(b) } catch (e) { err = e }
      expect(isImagesmithError(err) && err.code).toBe('NOT_REPRESENTABLE')
    }
  })

  it('a bare image name in --from gets its :latest tag (it would read back as a stage name)', () => {
    expect(toDockerfile(image().from('scratch').copy('/bin/sh', '/sh', { from: 'busybox' }))).toBe('FROM scratch\nCOPY --from=busybox:latest /bin/sh /sh\n')
  })
})

describe('toDockerfile over deep stage chains', () => {
  for (const n of [2000, 10_000]) {
    it(`${n} stages chained by COPY --from print, and read back to the same vertex keys`, () => {
      let b = image().from('busybox').run('echo 0 > /f')
      for (let i = 1; i < n; i++) b = image().from('busybox').copy('/f', `/f${i}`, { from: b })
      const text = toDockerfile(b)
      expect(text.match(/^FROM /gm)).toHaveLength(n)
      expect(text).toContain(`COPY --from=stage-${n - 1} /f /f${n - 1}\n`)
      // Read back, then printed and read once more: the same graph both times.
      const keys = (x: ImageBuilder) => x.graph().vertices.map((v) => v.id)
      const imported = fromDockerfile(text).target
      expect(keys(imported)).toHaveLength(n + 1)
      expect(keys(fromDockerfile(toDockerfile(imported)).target)).toEqual(keys(imported))
    }, 60_000)
  }
})

describe('toDockerfile: imported files read back to the same graph', () => {
  const keys = (x: ImageBuilder) => x.graph().vertices.map((v) => v.id)
  /** Imports, prints the target, imports again: the printed text, after checking the graphs are equal. */
  const roundTrip = (text: string): string => {
    const d = fromDockerfile(text)
    const printed = toDockerfile(d.target, { names: d.stages })
    expect(keys(fromDockerfile(printed).target), printed).toEqual(keys(d.target))
    return printed
  }
  const refused = (text: string): Record<string, unknown> => {
    const d = fromDockerfile(text)
    try {
      toDockerfile(d.target)
    } catch (e) {
      if (isImagesmithError(e) && e.code === 'NOT_REPRESENTABLE') return e.details
      throw e
    }
    throw new Error('expected NOT_REPRESENTABLE')
  }

  it('old-form LABEL/ENV: the key, then the value verbatim (quotes, escapes, blanks a key=value word cannot hold)', () => {
    expect(roundTrip('FROM scratch\nLABEL maintainer James Turnbull "j@e.com"\n')).toContain('LABEL maintainer James Turnbull "j@e.com"\n')
    expect(roundTrip('FROM scratch\nLABEL maintainer Erik \\\\Hollensbe <erik@hollensbe.org>\\"\n')).toContain('LABEL maintainer Erik \\\\Hollensbe <erik@hollensbe.org>\\"\n')
    // The key ends in an escape (its word runs on into the value), holds a no-break space or a quote.
    roundTrip('FROM scratch\nENV namevalue\\ value2 name2=value2\\ value3\n')
    roundTrip('FROM scratch\nLABEL main\u00a0tainer foo@bar.com\n')
    roundTrip('FROM scratch\nENV A"--exclude PACHE_LOCK_DIR /var/run"\n')
    roundTrip('FROM scratch\nENV C trailing\\\\backslash\\\\\n')
    // An empty value of a key=value pair stays empty, not `""`.
    expect(roundTrip('FROM scratch\nENV A=1 B= C=3\n')).toContain('ENV A=1 B= C=3\n')
    // A quote opened in a key holds the value's blanks: the word is written as it was.
    expect(roundTrip('FROM scratch\nENV X=1 K"a  b=c d\n')).toContain('ENV X=1 K"a  b=c d\n')
  })

  it('a carriage return inside a RUN line stays shell form (and inside a heredoc body)', () => {
    expect(roundTrip('FROM scratch\nRUN echo a\rb\n')).toContain('RUN echo a\rb\n')
    expect(roundTrip('FROM scratch\nRUN <<EOF\necho a\r\necho b\nEOF\n')).toContain("RUN <<'EOF'\necho a\r\necho b\nEOF\n")
    // A literal value with one, from a global ARG, is quoted on its line.
    roundTrip('ARG V="a\rb c"\nFROM scratch\nARG V\n')
  })

  it('HEALTHCHECK flags set to 0 are written (0 is in the config, unlike no flag)', () => {
    const printed = roundTrip('FROM scratch\nHEALTHCHECK --interval=0 --timeout=0s --start-period=0 --retries=0 CMD true\n')
    expect(printed).toContain('HEALTHCHECK --interval=0s --timeout=0s --start-period=0s --retries=0 CMD true\n')
  })

  it("FROM and --from references are escaped for the lexer: FROM hello'$there' reads back as hello$there", () => {
    expect(roundTrip("FROM hello'$there'\n")).toBe('FROM hello\\$there\n')
    // `--from=a:b\\\$c` reads as the reference `a:b$c`: written back quoted, its escape doubled.
    expect(roundTrip('FROM scratch\nCOPY --from=a:b\\\\\\$c /x /y\n')).toContain('COPY --from="a:b\\\\$c" /x /y\n')
    expect(roundTrip('FROM "--x:1"\n')).toBe('FROM \\--x:1\n')
  })

  it('a 1 MB continued line prints as continued lines within the parser line limit', () => {
    const text = `FROM scratch\nRUN ${`echo ${'y'.repeat(1000)} && \\\n`.repeat(1100)}true\n`
    const printed = roundTrip(text)
    const lines = printed.split('\n')
    expect(Math.max(...lines.map((l) => Buffer.byteLength(l)))).toBeLessThan(65_535)
    expect(lines.length).toBeGreaterThan(60)
  })

  it('a stage FROM a stage with ONBUILD triggers prints (the triggers are lowered to key the stages)', () => {
    expect(roundTrip('FROM scratch AS base\nONBUILD RUN x\nFROM base\nRUN y\n')).toBe('FROM scratch AS base\nONBUILD RUN x\n\nFROM base\nRUN y\n')
  })

  it('an empty heredoc file (the terminator right after the line) prints', () => {
    expect(roundTrip('FROM scratch\nCOPY <<EOF /done\nEOF\n')).toContain('COPY <<EOF /done\nEOF\n')
  })

  it('an ARG default with nothing to expand is its literal value, so a quoted one reads back the same', () => {
    const d = fromDockerfile('ARG G="a b"\nFROM scratch\nARG G\nARG L="x y" M=\'p\\\\q\' N=$G\n')
    expect(d.target.toStage().steps.map((s) => s.spec)).toEqual([
      { op: 'arg', args: [{ name: 'G', value: 'a b' }] },
      { op: 'arg', args: [{ name: 'L', value: 'x y' }, { name: 'M', value: 'p\\\\q' }, { name: 'N', value: '$G', expand: true }] },
    ])
    expect(roundTrip('ARG G="a b"\nFROM scratch\nARG G\nARG L="x y" M=\'p\\\\q\' N=$G\n')).toContain('ARG L="x y" M="p\\\\\\\\q" N=$G\n')
  })

  it('text that starts like a flag gets `--` before it; a COPY path holding << is written in JSON form', () => {
    expect(roundTrip('FROM scratch\nCOPY ["--from=bashrc", "/tmp"]\n')).toContain('COPY -- --from=bashrc /tmp\n')
    expect(roundTrip('FROM scratch\nRUN -- --x y\n')).toContain('RUN -- --x y\n')
    expect(roundTrip('FROM scratch\nCOPY ["a<<b", "/d"]\n')).toContain('COPY ["a<<b", "/d"]\n')
    // Not JSON as written (a vertical tab), split on blanks; joined by spaces the words would be JSON.
    expect(roundTrip('FROM scratch\nCOPY ["a",\v"/b"]\n')).toContain('COPY ["[\\"a\\",", "\\"/b\\"]"]\n')
  })

  it('flag values: quotes, blanks and non-ASCII (read byte by byte) come back; --mount fields are CSV-quoted', () => {
    roundTrip('FROM scratch\nCOPY --chown="a b" --chmod=7\'5\'5 --exclude="x y" a /b\n')
    roundTrip('FROM scratch\nCOPY --chown=jürgen a /b\n')
    roundTrip('FROM scratch\nRUN --mount=type=cache,"target=/a,b",id="x y" true\n')
  })

  it('a RUN ending in an escaped escape stays shell form', () => {
    expect(roundTrip('FROM scratch\nRUN echo b:\\\\\n')).toContain('RUN echo b:\\\\\n')
  })

  it('NOT_REPRESENTABLE for what has no spelling: part of a UTF-8 character in a flag, a blank in an image reference, << words that would open heredocs', () => {
    // A no-break space is the bytes C2 A0; BuildKit reads A0 as a blank, so the flag keeps half a character.
    expect(refused('FROM scratch\nCOPY --chown=ab\u00a0c d /e\n')).toMatchObject({ value: 'abÂ' })
    expect(refused('ARG V="a b"\nFROM x${V}\n')).toMatchObject({ ref: 'xa b' })
    // The flag's `'/t\\'x'` is one word to the flag reader, an open quote to the heredoc lexer, which so
    // never saw `<<EOF;`; written back balanced, the line would open a heredoc.
    expect(refused("FROM scratch\nRUN --mount=type=tmpfs,target='/t\\'x' cat <<EOF; true\n")).toMatchObject({ line: expect.stringContaining('<<EOF;') })
  })
})
