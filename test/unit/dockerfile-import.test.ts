/**
 * fromDockerfile at the graph level: stages, ARG scoping, FROM references, where words are
 * expanded (lowering time vs build time), instruction mapping and the typed errors with line/column.
 */
import { describe, expect, it } from 'vitest'
import { ErrorCodes, fromDockerfile, toDockerfile, type AnyVertex, type ImageBuilder } from '../../src/index.js'

const steps = (b: ImageBuilder) => b.toStage().steps
const specs = (b: ImageBuilder) => steps(b).map((s) => s.spec as unknown as Record<string, unknown>)
const baseRef = (b: ImageBuilder) => { const base = b.toStage().base; return 'ref' in base ? base.ref : '<stage>' }
const fails = (text: string, code: string, opts = {}) => {
  try {
    fromDockerfile(text, opts)
  } catch (e) {
    expect(e).toMatchObject({ code })
    return e as { details: Record<string, unknown>; message: string }
  }
  throw new Error('expected a failure')
}

describe('fromDockerfile: stages and FROM', () => {
  it('one builder per stage, by name (case-insensitive) and index; --target chooses, default the last', () => {
    const text = 'FROM scratch AS Build\nCOPY a /a\nFROM oci-archive:/x.tar AS run\nCOPY --from=BUILD /a /a\nFROM build\n'
    const d = fromDockerfile(text)
    expect(Object.keys(d.stages).sort()).toEqual(['0', '1', '2', 'build', 'run'])
    expect(d.stageList).toHaveLength(3)
    expect(d.target).toBe(d.stages['2'])
    expect(fromDockerfile(text, { target: 'RUN' }).target.graph().outputs[0]!.vertex).toBe(d.stages.run!.graph().outputs[0]!.vertex)
    expect(baseRef(d.stages.run!)).toBe('oci-archive:/x.tar')
    // FROM an earlier stage builds on that stage's builder.
    expect(d.stages['2']!.toStage().base).toEqual({ stage: d.stages.build!.toStage() })
    expect(steps(d.stages.run!)[0]!.deps).toEqual([{ stage: d.stages.build!.toStage() }])
  })

  it('COPY --from takes an index, a stage name or an image reference', () => {
    const d = fromDockerfile('FROM scratch\nCOPY a /a\nFROM scratch\nCOPY --from=0 /a /b\nCOPY --from=registry.example/tools:1 /t /t\n')
    const deps = steps(d.target).map((s) => s.deps)
    expect(deps[0]).toEqual([{ stage: d.stages['0']!.toStage() }])
    expect(deps[1]).toEqual([{ ref: 'registry.example/tools:1' }])
  })

  it('UNDEFINED_STAGE names the line and column of the instruction', () => {
    const e = fails('FROM scratch\nRUN true\n  COPY --from=nope /a /b\n', ErrorCodes.UNDEFINED_STAGE)
    expect(e.details).toMatchObject({ stage: 'nope', line: 3, column: 3, text: 'COPY --from=nope /a /b' })
    expect(e.message).toContain('line 3:3')
    fails('FROM scratch\nCOPY --from=later /a /b\nFROM scratch AS later\n', ErrorCodes.UNDEFINED_STAGE)
    fails('FROM scratch\nCOPY --from=3 /a /b\n', ErrorCodes.UNDEFINED_STAGE)
    fails('FROM scratch AS a\n', ErrorCodes.TARGET_NOT_FOUND, { target: 'b' })
  })
})

describe('fromDockerfile: ARG scoping and platform ARGs', () => {
  it('global ARGs expand FROM; --build-arg overrides them; they are not in a stage until re-declared', () => {
    const text = 'ARG REG=registry.example\nARG TAG=1\nFROM ${REG}/app:$TAG\nARG TAG\nARG REG=other\nRUN echo $TAG\n'
    const d = fromDockerfile(text)
    expect(baseRef(d.target)).toBe('registry.example/app:1')
    // Re-declared without a value: the global value (literal); with its own default: that default, expanded at
    // build time when it has anything to expand (a plain word is stored literal, so a printed Dockerfile reads back the same).
    expect(specs(d.target).slice(0, 2)).toEqual([
      { op: 'arg', args: [{ name: 'TAG', value: '1' }] },
      { op: 'arg', args: [{ name: 'REG', value: 'other' }] },
    ])
    expect(specs(fromDockerfile('FROM scratch\nARG A=$B-x\n').target)[0]).toEqual({ op: 'arg', args: [{ name: 'A', value: '$B-x', expand: true }] })
    const o = fromDockerfile(text, { buildArgs: { TAG: '2', REG: 'r.io' } })
    expect(baseRef(o.target)).toBe('r.io/app:2')
    expect(specs(o.target)[1]).toEqual({ op: 'arg', args: [{ name: 'REG', value: 'r.io' }] })
  })

  it('predefined platform ARGs: in global scope for FROM, in a stage once declared', () => {
    const d = fromDockerfile('FROM scratch AS s\nARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDARCH\n', { platform: 'linux/arm64' })
    expect(specs(d.target)[0]).toEqual({
      op: 'arg',
      args: [
        { name: 'TARGETPLATFORM', value: 'linux/arm64' }, { name: 'TARGETOS', value: 'linux' }, { name: 'TARGETARCH', value: 'arm64' },
        { name: 'TARGETVARIANT', value: '' }, { name: 'BUILDPLATFORM', value: 'linux/amd64' }, { name: 'BUILDARCH', value: 'amd64' },
      ],
    })
    expect(fromDockerfile('ARG TARGETARCH\nFROM oci-archive:/b-${TARGETARCH}.tar\n').target.toStage().base).toEqual({ ref: 'oci-archive:/b-amd64.tar' })
    // FROM --platform of the build's own platform is a plain FROM; another one is the stage's platform, normalised.
    expect(fromDockerfile('FROM --platform=$BUILDPLATFORM scratch\n').target.toStage().platform).toBeUndefined()
    expect(fromDockerfile('FROM --platform=$BUILDPLATFORM scratch\n', { platform: 'linux/arm64' }).target.toStage().platform).toBe('linux/amd64')
    expect(fromDockerfile('FROM --platform=linux/arm64/v8 scratch\n').target.toStage().platform).toBe('linux/arm64')
    fails('FROM --platform=linux scratch\n', ErrorCodes.UNSUPPORTED_PLATFORM)
  })

  it('only ARG may come before the first FROM', () => {
    fails('ENV A=1\nFROM scratch\n', ErrorCodes.DOCKERFILE_SYNTAX)
  })
})

describe('fromDockerfile: instructions map to builder steps', () => {
  it('words expanded against the stage env are kept as written and marked', () => {
    const d = fromDockerfile('FROM scratch\nENV A="x y" B=$A\nWORKDIR $HOME\nUSER $U\nEXPOSE $P 80/udp\nVOLUME ["/v/$A"]\nLABEL "k"=$A\nSTOPSIGNAL $S\nCOPY --chown=$UID --chmod=$M $SRC $DEST/\n')
    expect(specs(d.target)).toEqual([
      { op: 'env', vars: [['A', '"x y"'], ['B', '$A']], expand: true },
      { op: 'workdir', path: '$HOME', expand: true },
      { op: 'user', user: '$U', expand: true },
      { op: 'expose', ports: ['$P', '80/udp'], expand: true },
      { op: 'volume', paths: ['/v/$A'], expand: true },
      { op: 'label', labels: [['"k"', '$A']], expand: true },
      { op: 'stopsignal', signal: '$S', expand: true },
      { sources: ['$SRC'], dest: '$DEST/', fromInput: false, chown: '$UID', chmod: '$M', exclude: [], link: false, expand: true },
    ])
  })

  it('a backtick escape directive travels with the words', () => {
    expect(specs(fromDockerfile('# escape=`\nFROM scratch\nWORKDIR C:`\\x\n').target)[0]).toEqual({ op: 'workdir', path: 'C:`\\x', expand: true, escapeToken: '`' })
  })

  it('RUN: shell and exec form, heredocs as BuildKit runs them, --mount/--network', () => {
    const d = fromDockerfile([
      'FROM scratch AS b', 'FROM scratch', 'RUN echo $HOME', 'RUN ["echo", "x"]', 'RUN <<EOF', 'echo a', 'EOF',
      'RUN <<-EOF', '\techo tab', '\tEOF', 'RUN cat <<A > /x && cat <<B > /y', 'a', 'A', 'b', 'B',
      'RUN --network=none --mount=type=cache,target=/c,id=c1,sharing=locked --mount=type=bind,from=b,source=/s,target=/t --mount=type=secret,id=tok,env=TOK --mount=type=tmpfs,target=/tmp,size=1m true', '',
    ].join('\n'))
    const r = specs(d.target)
    expect(r[0]).toMatchObject({ command: ['echo $HOME'], shellForm: true })
    expect(r[1]).toMatchObject({ command: ['echo', 'x'], shellForm: false })
    expect(r[2]).toMatchObject({ command: ['echo a\n'], shellForm: true })
    expect(r[3]).toMatchObject({ command: ['echo tab\n'], shellForm: true })
    expect(r[4]).toMatchObject({ command: ['cat <<A > /x && cat <<B > /y\na\nA\nb\nB'], shellForm: true })
    expect(r[5]).toMatchObject({
      network: 'none',
      mounts: [
        { type: 'cache', target: '/c', id: 'c1', sharing: 'locked' },
        { type: 'bind', target: '/t', source: '/s', fromInput: 1, readwrite: false },
        { type: 'secret', id: 'tok', env: 'TOK' },
        { type: 'tmpfs', target: '/tmp', size: 1 << 20 },
      ],
    })
  })

  it('COPY heredocs, --exclude/--link/--parents; ADD --checksum; HEALTHCHECK with --start-interval; CMD/ENTRYPOINT/SHELL; ONBUILD; MAINTAINER', () => {
    const sum = `sha256:${'a'.repeat(64)}`
    const d = fromDockerfile([
      'FROM scratch', 'COPY --exclude=*.md --link <<A <<"B" /etc/', 'x $HOME', 'A', 'y $HOME', 'B',
      `ADD --checksum=${sum} https://example.com/f /f`,
      'HEALTHCHECK --interval=5s --start-period=1s --start-interval=2s --retries=3 CMD ["curl", "-f", "x"]',
      'CMD echo hi', 'ENTRYPOINT ["/e"]', 'SHELL ["/bin/bash", "-c"]', 'ONBUILD  RUN echo hi > /x', 'MAINTAINER me <me@x>', '',
    ].join('\n'))
    const r = specs(d.target)
    expect(specs(fromDockerfile('FROM scratch\nCOPY --parents a/./b /dst/\n').target)[0]).toMatchObject({ sources: ['a/./b'], parents: true })
    expect(specs(fromDockerfile('FROM scratch\nADD --keep-git-dir=true https://example.com/r.git#v1:sub /src\n').target)[0]).toMatchObject({ sources: ['https://example.com/r.git#v1:sub'], keepGitDir: true })
    expect(specs(fromDockerfile('FROM scratch\nADD <<EOF /index.html\nhi\nEOF\n').target)[0]).toMatchObject({ sources: [], dest: '/index.html', inline: [{ name: 'EOF', data: 'hi\n', expand: true }], unpack: true })
    // A bind mount without a target is mounted at the working dir (BuildKit resolves relative targets against it).
    expect(specs(fromDockerfile('FROM scratch AS s\nFROM scratch\nRUN --mount=from=s,src=/x true\n').target)[0]).toMatchObject({ mounts: [{ type: 'bind', target: '.', source: '/x', fromInput: 1 }] })
    expect(r[0]).toMatchObject({ sources: [], dest: '/etc/', exclude: ['*.md'], link: true, inline: [{ name: 'A', data: 'x $HOME\n', expand: true }, { name: 'B', data: 'y $HOME\n' }] })
    expect(r[1]).toMatchObject({ sources: ['https://example.com/f'], dest: '/f', checksum: sum, unpack: true })
    expect(r[2]).toEqual({ op: 'healthcheck', health: { Test: ['CMD', 'curl', '-f', 'x'], Interval: 5e9, StartPeriod: 1e9, StartInterval: 2e9, Retries: 3 } })
    expect(r.slice(3)).toEqual([
      { op: 'cmd', args: ['echo hi'], shellForm: true },
      { op: 'entrypoint', args: ['/e'], shellForm: false },
      { op: 'shell', shell: ['/bin/bash', '-c'] },
      { op: 'onbuild', instruction: 'RUN echo hi > /x' },
      { op: 'maintainer', name: 'me <me@x>' },
    ])
  })

  it('RUN --security and --mount=type=ssh lower into the spec (entitlements and sockets are checked at build time, as BuildKit does)', () => {
    const d = fromDockerfile([
      'FROM scratch',
      'RUN --security=insecure --network=host true',
      'RUN --security=sandbox true',
      'RUN --mount=type=ssh --mount=type=ssh,id=gh,target=/s/agent,required=true,mode=0640,uid=1,gid=2 true',
      '',
    ].join('\n'))
    const r = specs(d.target)
    expect(r[0]).toEqual({ command: ['true'], shellForm: true, network: 'host', mounts: [], security: 'insecure' })
    // sandbox is the default: spelled out or not, the same vertex
    expect(r[1]).toEqual({ command: ['true'], shellForm: true, network: 'default', mounts: [] })
    expect(r[2]).toMatchObject({
      mounts: [
        { type: 'ssh', id: 'default', target: '', required: false, mode: 0o600, uid: 0, gid: 0 },
        { type: 'ssh', id: 'gh', target: '/s/agent', required: true, mode: 0o640, uid: 1, gid: 2 },
      ],
    })
    const printed = toDockerfile(d.target)
    expect(printed).toContain('RUN --network=host --security=insecure true')
    expect(printed).toContain('RUN --mount=type=ssh --mount=type=ssh,id=gh,target=/s/agent,required=true,mode=0640,uid=1,gid=2 true')
    expect(fromDockerfile(printed).target.graph().vertices.map((v) => v.id)).toEqual(d.target.graph().vertices.map((v) => v.id))
    fails('FROM scratch\nRUN --security=privileged true\n', ErrorCodes.DOCKERFILE_SYNTAX)
    fails('FROM scratch\nRUN --mount=type=ssh,source=/x true\n', ErrorCodes.DOCKERFILE_SYNTAX)
  })

  it('RUN --device (Dockerfile labs, CDI devices) is an explicit UNSUPPORTED_INSTRUCTION, never dropped', () => {
    const e = fails('FROM scratch\nRUN --device=vendor.com/gpu=0 true\n', ErrorCodes.UNSUPPORTED_INSTRUCTION)
    expect(e.details).toMatchObject({ line: 2, column: 1, feature: 'RUN --device' })
  })

  it('triggers of a base stage run right after its FROM, in the graph', () => {
    const d = fromDockerfile('FROM scratch AS base\nONBUILD COPY a /a\nFROM base\nRUN true\n')
    const g = d.target.graph()
    const out = g.vertices.find((v) => v.id === g.outputs[0]!.vertex)!
    const trigger = g.vertices.find((v) => v.id === out.inputs[0]) as AnyVertex
    expect(trigger.kind).toBe('copy')
    expect(trigger.spec).toMatchObject({ sources: ['a'], dest: '/a', expand: true })
  })
})

describe('fromDockerfile: import time grows linearly', () => {
  /** Best of `runs` in ms: the minimum filters out GC pauses and a busy machine. */
  const best = (runs: number, fn: () => void) => {
    let t = Infinity
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now()
      fn()
      t = Math.min(t, performance.now() - t0)
    }
    return t
  }
  /**
   * n instructions, a quarter each: global ARGs; ARGs of one stage (each default reading the one
   * before); mixed instructions of that stage; named stages each copying from the one before.
   */
  const dockerfile = (n: number) => {
    const q = n / 4
    const lines: string[] = []
    for (let i = 0; i < q; i++) lines.push(`ARG G${i}=${i}`)
    lines.push('FROM scratch AS s0')
    for (let i = 0; i < q; i++) lines.push(`ARG A${i}=$A${Math.max(0, i - 1)}`)
    for (let i = 0; i < q; i++) lines.push([`ENV E${i}=${i}`, `RUN echo ${i}`, `COPY a${i} /b`, `LABEL l${i}=v`, `WORKDIR /w${i}`][i % 5]!)
    for (let i = 0; i < q / 2; i++) lines.push(`FROM scratch AS s${i + 1}`, `COPY --from=s${i} /a /a`)
    return `${lines.join('\n')}\n`
  }

  it('100k instructions take under 20× the time of 10k (quadratic is 100×)', () => {
    const small = dockerfile(10_000)
    const large = dockerfile(100_000)
    let stages = 0
    // Growth, never wall time; a stalled measurement gets another try, quadratic growth fails them all.
    let ratio = Infinity
    for (let attempt = 0; attempt < 3 && ratio >= 20; attempt++) {
      const tl = best(2, () => {
        stages = fromDockerfile(large).stageList.length
      })
      ratio = Math.min(ratio, tl / Math.max(best(3, () => fromDockerfile(small)), 1))
    }
    expect(stages).toBe(12_501)
    expect(ratio).toBeLessThan(20)
  }, 120_000)
})
