import { describe, expect, it } from 'vitest'
import { image, isImagesmithError } from '../../src/index.js'
import { describeStep, dockerfileText, historyText, type StepText } from '../../src/graph/instruction-text.js'
import type { ConfigSpec } from '../../src/graph/nodes/config-node.js'

const cfg = (spec: ConfigSpec): StepText => ({ kind: 'config', spec, deps: [] })
const strict = { strict: true, input: () => 'builder' }

describe('history flavour: exactly BuildKit’s created_by', () => {
  it('COPY/ADD leave out --from, --exclude and --link', () => {
    expect(historyText('copy', { sources: ['a', 'b'], dest: '/x/', fromInput: true, chown: 'u:g', chmod: '644', exclude: ['*.md'], link: true })).toBe('COPY --chown=u:g --chmod=644 a b /x/ # buildkit')
    expect(historyText('add', { sources: ['f.tar'], dest: '/opt', fromInput: false, exclude: [], link: false, unpack: true })).toBe('ADD f.tar /opt # buildkit')
  })
  it('RUN shows the build args in scope and the SHELL-wrapped argv', () => {
    const spec = { command: ['echo hi'], shellForm: true, network: 'default', mounts: [] } as const
    expect(historyText('run', spec, { argv: ['/bin/sh', '-c', 'echo hi'], buildArgs: [{ name: 'V', value: '1' }, { name: 'U' }] })).toBe('RUN |1 V=1 /bin/sh -c echo hi # buildkit')
  })
  it('metadata ops use Go’s %v/%q forms', () => {
    expect(historyText('config', { op: 'expose', ports: ['90/udp', '80/tcp'] })).toBe('EXPOSE map[80/tcp:{} 90/udp:{}]')
    expect(historyText('config', { op: 'cmd', args: ['a', 'b'], shellForm: false })).toBe('CMD ["a" "b"]')
    expect(historyText('config', { op: 'volume', paths: ['/a', '/b'] })).toBe('VOLUME [/a /b]')
    expect(historyText('config', { op: 'shell', shell: ['/bin/bash', '-c'] })).toBe('SHELL [/bin/bash -c]')
    expect(historyText('config', { op: 'healthcheck', health: { Test: ['CMD-SHELL', 'true'], Interval: 30e9, Retries: 3 } }))
      .toBe(`HEALTHCHECK &{["CMD-SHELL" "true"] "30s" "0s" "0s" "0s" '\\x03'}`)
    expect(historyText('config', { op: 'onbuild', instruction: 'RUN x' })).toBeNull()
    expect(historyText('config', { op: 'workdir', path: 'rel' }, { workdir: '/srv/rel' })).toBe('WORKDIR /srv/rel')
  })
})

describe('Dockerfile flavour', () => {
  it('quotes ENV/LABEL/ARG values with spaces, quotes and $; leaves plain ones bare', () => {
    expect(dockerfileText(cfg({ op: 'env', vars: [['A', 'plain'], ['B', 'a b'], ['C', 'say "hi" $HOME \\x'], ['D', '']] }), strict))
      .toBe('ENV A=plain B="a b" C="say \\"hi\\" \\$HOME \\\\x" D=')
    expect(dockerfileText(cfg({ op: 'label', labels: [['org.example key', 'v']] }), strict)).toBe('LABEL "org.example key"=v')
    expect(dockerfileText(cfg({ op: 'arg', args: [{ name: 'V', value: '1 2' }, { name: 'W' }] }), strict)).toBe('ARG V="1 2" W')
  })
  it('a line break in ENV has no Dockerfile spelling: typed NOT_REPRESENTABLE when strict, readable in descriptions', () => {
    const step = cfg({ op: 'env', vars: [['A', 'x\ny']] })
    let err: unknown
    try { dockerfileText(step, strict) } catch (e) { err = e }
    expect(isImagesmithError(err) && err.code).toBe('NOT_REPRESENTABLE')
    expect(describeStep(step)).toBe('ENV A="x\\ny"')
  })
  it('exec form for arrays; shell form kept; multi-line scripts as heredocs, other odd shell text as exec form through SHELL', () => {
    expect(dockerfileText(cfg({ op: 'cmd', args: ['node', 'a b.js'], shellForm: false }))).toBe('CMD ["node", "a b.js"]')
    expect(dockerfileText(cfg({ op: 'entrypoint', args: ['run.sh --x'], shellForm: true }))).toBe('ENTRYPOINT run.sh --x')
    expect(dockerfileText(cfg({ op: 'cmd', args: ['a\nb'], shellForm: true }))).toBe('CMD ["/bin/sh", "-c", "a\\nb"]')
    expect(dockerfileText(cfg({ op: 'cmd', args: ['["x"]'], shellForm: true }), { ...strict, shell: ['/bin/bash', '-c'] })).toBe('CMD ["/bin/bash", "-c", "[\\"x\\"]"]')
    const run: StepText = { kind: 'run', spec: { command: ['set -e\nEOF\n'], shellForm: true, network: 'none', mounts: [] }, deps: [] }
    expect(dockerfileText(run)).toBe("RUN --network=none <<'EOF1'\nset -e\nEOF\nEOF1")
  })
  it('COPY paths with spaces use the JSON form; $ and quotes escaped for the lexer; flags in order', () => {
    const b = image().from('scratch').copy(['my file', 'x$y'], '/dst dir/', { chown: '1:2', chmod: '0755', exclude: ['*.md'], link: true })
    const step = b.toStage().steps[0]!
    expect(dockerfileText(step, strict)).toBe('COPY --chown=1:2 --chmod=755 --exclude=*.md --link ["my file", "x\\\\$y", "/dst dir/"]')
  })
  it('RUN mounts print only what differs from the defaults; --from names the stage', () => {
    const dep = image().from('scratch')
    const b = image().from('scratch').run('make', { mounts: [
      { type: 'cache', target: '/root/.cache', sharing: 'locked' },
      { type: 'secret', id: 'tok', required: true },
      { type: 'bind', target: '/src', source: 'app', from: dep, readwrite: true },
      { type: 'tmpfs', target: '/tmp', size: 1024 },
    ] })
    const step = b.toStage().steps[0]!
    expect(dockerfileText(step, strict)).toBe(
      'RUN --mount=type=cache,target=/root/.cache,sharing=locked --mount=type=secret,id=tok,required=true ' +
      '--mount=type=bind,target=/src,source=app,from=builder,rw --mount=type=tmpfs,target=/tmp,size=1024 make')
    expect(step.meta.description).toContain('from=<stage>')
  })
  it('HEALTHCHECK options and NONE', () => {
    const b = image().from('scratch').healthcheck({ test: ['curl', '-f', 'http://x/'], interval: '1m30s', timeout: 5, retries: 2 })
    expect(b.toStage().steps[0]!.meta.description).toBe('HEALTHCHECK --interval=1m30s --timeout=5s --retries=2 CMD ["curl", "-f", "http://x/"]')
    expect(image().from('scratch').healthcheck('none').toStage().steps[0]!.meta.description).toBe('HEALTHCHECK NONE')
  })
  it('marked words ($VAR as written) print verbatim; literal words escape $', () => {
    const b = image().from('scratch').workdir('$HOME/app', { expand: true }).workdir('$HOME/lit').env('P', '${BASE:-/opt} x', { expand: true })
      .copy('$SRC', '/d/', { expand: true, chown: '$UID' })
    expect(b.toStage().steps.map((s) => dockerfileText(s, strict))).toEqual(['WORKDIR $HOME/app', 'WORKDIR \\$HOME/lit', 'ENV P ${BASE:-/opt} x', 'COPY --chown=$UID $SRC /d/'])
    const backtick = cfg({ op: 'workdir', path: 'C:`\\x\\$A', expand: true, escapeToken: '`' })
    expect(dockerfileText(backtick, strict)).toBe('WORKDIR C:\\\\x\\\\$A')
  })
  it('builder descriptions are the Dockerfile text', () => {
    const b = image().from('scratch').copy('app', '/app/').run('echo ran > /ran').env('A', 'a b').expose([80, '53/udp']).volume('/data')
    expect(b.toStage().steps.map((s) => s.meta.description)).toEqual(['COPY app /app/', 'RUN echo ran > /ran', 'ENV A="a b"', 'EXPOSE 80/tcp 53/udp', 'VOLUME ["/data"]'])
  })
})
