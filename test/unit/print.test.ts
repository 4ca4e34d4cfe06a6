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
