import { describe, expect, it } from 'vitest'
import { ErrorCodes, image, ImagesmithError, toDot, toMermaid } from '../../src/index.js'

const base = () => image().from('oci-archive:/tmp/base.tar')

describe('ImageBuilder immutability', () => {
  it('every method returns a new builder and leaves the old one untouched', () => {
    const a = base().workdir('/app')
    const before = JSON.stringify(a.toStage())
    const calls = [
      (b: typeof a) => b.copy('dist/', '.'),
      (b: typeof a) => b.add('x.tar', '/x/'),
      (b: typeof a) => b.run('true'),
      (b: typeof a) => b.env('A', '1'),
      (b: typeof a) => b.arg('V', '1'),
      (b: typeof a) => b.workdir('sub'),
      (b: typeof a) => b.user('app'),
      (b: typeof a) => b.expose(80),
      (b: typeof a) => b.volume('/data'),
      (b: typeof a) => b.label('k', 'v'),
      (b: typeof a) => b.cmd(['sh']),
      (b: typeof a) => b.entrypoint(['node']),
      (b: typeof a) => b.healthcheck({ test: 'true' }),
      (b: typeof a) => b.stopSignal('SIGTERM'),
      (b: typeof a) => b.shell(['/bin/bash', '-c']),
      (b: typeof a) => b.onBuild('RUN make'),
      (b: typeof a) => b.maintainer('me'),
    ]
    for (const call of calls) {
      const b = call(a)
      expect(b).not.toBe(a)
      expect(b.toStage().steps.length).toBe(a.toStage().steps.length + 1)
    }
    expect(JSON.stringify(a.toStage())).toBe(before)
  })

  it('stage data is deeply frozen', () => {
    const s = base().env({ A: '1' }).toStage()
    expect(Object.isFrozen(s)).toBe(true)
    expect(Object.isFrozen(s.steps)).toBe(true)
    expect(Object.isFrozen(s.steps[0]!.spec)).toBe(true)
    expect(() => (s.steps as unknown as unknown[]).push(1)).toThrow()
  })

  it('branches from one builder do not affect each other', () => {
    const a = base().env('A', '1')
    const b1 = a.run('echo one')
    const b2 = a.run('echo two')
    expect(b1.graph().outputs[0]!.vertex).not.toBe(b2.graph().outputs[0]!.vertex)
    expect(b1.toStage().steps[0]).toBe(b2.toStage().steps[0])
  })
})

describe('graph', () => {
  it('is deterministic and content-addressed', () => {
    const mk = () => base().copy('a', '/a').env('X', 'y').run('make')
    expect(mk().graph()).toEqual(mk().graph())
    expect(mk().graph().outputs[0]!.vertex).toBe(mk().graph().outputs[0]!.vertex)
    expect(mk().graph().outputs[0]!.vertex).not.toBe(base().copy('a', '/a').env('X', 'z').run('make').graph().outputs[0]!.vertex)
  })

  it('keeps vertices in topological order with frozen plain data', () => {
    const g = base().copy('a', '/a').run('make').graph()
    const seen = new Set<string>()
    for (const v of g.vertices) {
      for (const i of v.inputs) expect(seen.has(i)).toBe(true)
      seen.add(v.id)
      expect(Object.isFrozen(v)).toBe(true)
      expect(JSON.parse(JSON.stringify(v))).toEqual(v)
    }
    expect(g.vertices.at(-1)!.id).toBe(g.outputs[0]!.vertex)
  })

  it('makes copy({ from: stage }) a dependency and dedupes shared stages', () => {
    const build = image().from('oci:/tmp/sdk').run('make')
    const app = image().from('scratch').copy('/out', '/app', { from: build }).copy('/out2', '/app2', { from: build })
    const g = app.graph()
    const runs = g.vertices.filter((v) => v.kind === 'run')
    expect(runs).toHaveLength(1)
    const copies = g.vertices.filter((v) => v.kind === 'copy')
    for (const c of copies) expect(c.inputs[1]).toBe(runs[0]!.id)
  })

  it('description (meta) does not change the vertex id', () => {
    const a = base().copy(['a'], '/a')
    const b = base().copy('a', '/a')
    expect(a.graph().outputs[0]!.vertex).toBe(b.graph().outputs[0]!.vertex)
  })

  it('resolves ARG values from build args into the graph', () => {
    const b = base().arg('V', '1').run('echo $V')
    expect(b.graph().outputs[0]!.vertex).toBe(b.graph({ buildArgs: { V: '1' } }).outputs[0]!.vertex)
    expect(b.graph().outputs[0]!.vertex).not.toBe(b.graph({ buildArgs: { V: '2' } }).outputs[0]!.vertex)
  })

  it('renders as Mermaid and DOT', () => {
    const g = image().from('scratch').copy('a', '/a').env('A', '1').graph()
    const m = toMermaid(g)
    expect(m).toMatch(/^flowchart TD/)
    expect(m).toContain('COPY a /a')
    expect(m.match(/-->/g)).toHaveLength(2)
    const d = toDot(g)
    expect(d).toMatch(/^digraph imagesmith \{/)
    expect(d.match(/->/g)).toHaveLength(2)
  })
})

describe('validation', () => {
  const code = (fn: () => unknown) => {
    try {
      fn()
    } catch (e) {
      expect(e).toBeInstanceOf(ImagesmithError)
      return (e as ImagesmithError).code
    }
    throw new Error('expected an error')
  }

  it('rejects invalid ports with the offending value', () => {
    expect(code(() => base().expose('http'))).toBe(ErrorCodes.INVALID_PORT)
    expect(code(() => base().expose(70000))).toBe(ErrorCodes.INVALID_PORT)
    expect(code(() => base().expose('53/icmp'))).toBe(ErrorCodes.INVALID_PORT)
    try {
      base().expose('99999/udp')
    } catch (e) {
      expect((e as ImagesmithError).details.port).toBe('99999/udp')
    }
  })

  it('normalises ports as Docker does', () => {
    const g = base().expose(['80', '53/UDP', '8000-8001']).graph()
    const v = g.vertices.at(-1)!
    expect(v.spec).toEqual({ op: 'expose', ports: ['80/tcp', '53/udp', '8000/tcp', '8001/tcp'] })
  })

  it('rejects invalid signals and accepts Docker forms', () => {
    expect(code(() => base().stopSignal('SIGFOO'))).toBe(ErrorCodes.INVALID_SIGNAL)
    expect(code(() => base().stopSignal(0))).toBe(ErrorCodes.INVALID_SIGNAL)
    for (const s of ['SIGTERM', 'TERM', 'sigkill', '9', 'SIGRTMIN+3']) expect(() => base().stopSignal(s)).not.toThrow()
  })

  it('rejects bad env names, chmod, durations and checksums', () => {
    expect(code(() => base().env('A=B', 'x'))).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(code(() => base().copy('a', 'b', { chmod: '999' }))).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(code(() => base().healthcheck({ test: 'true', interval: '5 parsecs' }))).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(code(() => base().add('http://x/y', '/y', { checksum: 'md5:abc' }))).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(code(() => base().run([]))).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(code(() => base().run('true').from('scratch'))).toBe(ErrorCodes.INVALID_ARGUMENT)
  })
})

describe('run(): security and ssh mounts', () => {
  it('security insecure and ssh mounts go into a frozen spec with BuildKit defaults; sandbox is the default vertex', () => {
    const base = image().from('scratch')
    const plain = base.run('true')
    const sandbox = base.run('true', { security: 'sandbox' })
    const insecure = base.run('true', { security: 'insecure', mounts: [{ type: 'ssh' }, { type: 'ssh', id: 'gh', target: '/a', required: true, mode: 0o640, uid: 1, gid: 2 }] })
    expect(base.graph().vertices).toHaveLength(1)
    const out = (b: typeof base) => b.graph().vertices.at(-1)!
    expect(out(sandbox).id).toBe(out(plain).id)
    const v = out(insecure)
    expect(v.spec).toEqual({
      command: ['true'], shellForm: true, network: 'default', security: 'insecure',
      mounts: [
        { type: 'ssh', id: 'default', target: '', required: false, mode: 0o600, uid: 0, gid: 0 },
        { type: 'ssh', id: 'gh', target: '/a', required: true, mode: 0o640, uid: 1, gid: 2 },
      ],
    })
    expect(Object.isFrozen(v.spec)).toBe(true)
    expect(() => base.run('true', { security: 'privileged' as 'insecure' })).toThrow(ImagesmithError)
    expect(() => base.run('true', { mounts: [{ type: 'ssh', id: '' }] })).toThrow(ImagesmithError)
  })
})

describe('deep stage chains (no recursion over the builder or the graph)', () => {
  /** `n` stages, each copying a file from the one before (`COPY --from`), the last one returned. */
  const chain = (n: number) => {
    let b = image().from('busybox').run('echo 0 > /f')
    for (let i = 1; i < n; i++) b = image().from('busybox').copy('/f', `/f${i}`, { from: b })
    return b
  }

  for (const n of [2000, 10_000]) {
    it(`${n} stages chained by COPY --from: graph(), toMermaid/toDot, the ONBUILD base walk and the solver's setup`, async () => {
      const b = chain(n)
      const g = b.graph()
      // busybox (one source, shared), the RUN, then one COPY per further stage.
      expect(g.vertices).toHaveLength(n + 1)
      expect(g.vertices.at(-1)!.id).toBe(g.outputs[0]!.vertex)
      expect(toMermaid(g).split('\n').length).toBeGreaterThan(n)
      expect(toDot(g)).toContain('style=bold')
      const { baseTriggers } = await import('../../src/pipeline/onbuild.js')
      const read: string[] = []
      const triggers = await baseTriggers(b.toStage(), async (ref) => {
        read.push(ref)
        return { config: { config: { OnBuild: ['RUN x'] } } } as never
      })
      expect(read).toEqual(['busybox'])
      expect(triggers.get('busybox')).toEqual(['RUN x'])
      // The scheduler over the same chain, every vertex a no-op.
      const { solve } = await import('../../src/solver/solve.js')
      const ran: string[] = []
      const exec = async (v: { id: string }) => {
        ran.push(v.id)
        return { state: { config: {}, layers: [], args: [], cmdSet: false }, cached: true }
      }
      const executors = Object.fromEntries(['source', 'copy', 'add', 'run', 'config'].map((kind) => [kind, { kind, exec }]))
      const r = await solve(g, executors as never, { emit: () => {} } as never)
      expect(r.cacheHits).toBe(n + 1)
      expect(ran).toEqual(g.vertices.map((v) => v.id))
    }, 60_000)
  }
})
