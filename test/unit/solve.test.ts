import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { abortError, ErrorCodes, ImagesmithError } from '../../src/errors.js'
import type { AnyVertex, Graph } from '../../src/graph/node.js'
import type { Digest } from '../../src/oci/media-types.js'
import { solve } from '../../src/solver/solve.js'
import type { PoolName } from '../../src/solver/scheduler.js'
import type { ExecContext, ExecResult, ExecutorTable, ImageState, ProgressEvent } from '../../src/solver/types.js'
import type { Store } from '../../src/store/store.js'

/** What a fake vertex does, by its description. */
type Behaviour = (inputs: readonly ImageState[], signal: AbortSignal, ctx?: ExecContext) => Promise<ExecResult>

const tick = () => new Promise<void>((r) => setImmediate(r))

function stateOf(name: string, inputs: readonly ImageState[] = []): ImageState {
  return {
    config: { architecture: 'amd64', os: 'linux', config: { Labels: { name, from: inputs.map((s) => s.config.config.Labels?.name ?? '').join(',') } }, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
    layers: [],
    args: [],
    cmdSet: false,
  }
}

/** A vertex for the scheduler: only id, inputs and description matter to it. */
function vertex(name: string, inputs: readonly string[] = []): AnyVertex {
  return { id: `sha256:${name}` as Digest, kind: 'run', spec: {} as never, inputs: inputs.map((i) => `sha256:${i}` as Digest), meta: { description: name } }
}

function graphOf(vertices: readonly AnyVertex[]): Graph {
  return { vertices, outputs: [{ name: 'default', vertex: vertices.at(-1)!.id }] }
}

/** Every kind runs through `behaviours`; `calls` counts the executions per vertex. */
function fakeExecutors(behaviours: Record<string, Behaviour>, calls: Map<string, number>): ExecutorTable {
  const exec = (v: AnyVertex, inputs: readonly ImageState[], ctx: ExecContext): Promise<ExecResult> => {
    const name = v.meta.description
    calls.set(name, (calls.get(name) ?? 0) + 1)
    return behaviours[name]!(inputs, ctx.signal!, ctx)
  }
  return { source: { kind: 'source', exec }, copy: { kind: 'copy', exec }, add: { kind: 'add', exec }, run: { kind: 'run', exec }, config: { kind: 'config', exec } }
}

function ctxOf(events: ProgressEvent[] = [], signal?: AbortSignal): ExecContext {
  return {
    store: {} as Store,
    contextDir: '/',
    epoch: 0,
    clampRunMtimes: false,
    created: '1970-01-01T00:00:00Z',
    platform: { os: 'linux', architecture: 'amd64' },
    noCache: false,
    compression: 'gzip',
    secrets: {},
    network: 'default',
    ...(signal ? { signal } : {}),
    emit: (e) => events.push(e),
  }
}

const ok = (name: string, extra: Partial<ExecResult> = {}): Behaviour => async (inputs) => {
  await tick()
  return { state: stateOf(name, inputs), cached: false, ...extra }
}

/** Resolves when `signal` aborts, then fails as an aborted executor does (after releasing what it holds). */
function untilAborted(name: string, seen: Map<string, { reason: unknown; released: boolean }>): Behaviour {
  return (_inputs, signal) =>
    new Promise((_resolve, reject) => {
      signal.addEventListener('abort', async () => {
        const s = { reason: signal.reason, released: false }
        seen.set(name, s)
        // Releasing takes a while (a container killed, mounts undone): the solve must wait for it.
        for (let i = 0; i < 5; i++) await tick()
        s.released = true
        reject(abortError(signal))
      }, { once: true })
    })
}

let unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)
beforeEach(() => {
  unhandled = []
  process.on('unhandledRejection', onUnhandled)
})
afterEach(async () => {
  // Rejections are reported as unhandled a turn after they happen.
  for (let i = 0; i < 5; i++) await tick()
  process.off('unhandledRejection', onUnhandled)
  expect(unhandled).toEqual([])
})

describe('solve', () => {
  it('runs a vertex shared by several stages once, and lists every vertex in graph order with its key', async () => {
    const calls = new Map<string, number>()
    const keyDoc = { op: 'run', spec: 'a' }
    const g = graphOf([vertex('base'), vertex('a', ['base']), vertex('b', ['base']), vertex('final', ['a', 'b'])])
    const res = await solve(g, fakeExecutors({
      base: ok('base'),
      a: ok('a', { cached: true, key: { digest: 'sha256:ka' as Digest, doc: keyDoc } }),
      b: ok('b'),
      final: ok('final'),
    }, calls), ctxOf(), { concurrency: 4 })

    expect(Object.fromEntries(calls)).toEqual({ base: 1, a: 1, b: 1, final: 1 })
    expect(res.state.config.config.Labels).toEqual({ name: 'final', from: 'a,b' })
    expect(res.cacheHits).toBe(1)
    expect(res.vertices.map((v) => v.description)).toEqual(['base', 'a', 'b', 'final'])
    expect(res.vertices[1]).toMatchObject({ vertex: 'sha256:a', key: 'sha256:ka', keyDoc, cached: true })
    expect(res.vertices[0]).not.toHaveProperty('key')
    expect(res).not.toHaveProperty('states')
  })

  it("solves several outputs at once: a vertex they share runs once, and each output's state is returned", async () => {
    const calls = new Map<string, number>()
    let inFlight = 0
    let max = 0
    const cpuWork = (name: string): Behaviour => async (inputs, _signal, ctx) => {
      await ctx!.limits!.cpu.add(async () => {
        max = Math.max(max, ++inFlight)
        for (let i = 0; i < 3; i++) await tick()
        inFlight--
      })
      return { state: stateOf(name, inputs), cached: false }
    }
    const vertices = [vertex('base'), vertex('shared', ['base']), vertex('web', ['shared']), vertex('api', ['shared'])]
    // `shared` is an output too, and an input of the others; listed last, it is still run before them.
    const outputs = [
      { name: 'web', vertex: 'sha256:web' as Digest },
      { name: 'api', vertex: 'sha256:api' as Digest, platform: { os: 'linux', architecture: 'arm64' } },
      { name: 'shared', vertex: 'sha256:shared' as Digest },
    ]
    const res = await solve({ vertices, outputs }, fakeExecutors({ base: ok('base'), shared: cpuWork('shared'), web: cpuWork('web'), api: cpuWork('api') }, calls), ctxOf(), { limits: { cpu: 1 } })
    expect(Object.fromEntries(calls)).toEqual({ base: 1, shared: 1, web: 1, api: 1 })
    expect(res.outputs.map((o) => [o.name, o.vertex, o.platform, o.state.config.config.Labels])).toEqual([
      ['web', 'sha256:web', undefined, { name: 'web', from: 'shared' }],
      ['api', 'sha256:api', { os: 'linux', architecture: 'arm64' }, { name: 'api', from: 'shared' }],
      ['shared', 'sha256:shared', undefined, { name: 'shared', from: 'base' }],
    ])
    expect(res.state).toBe(res.outputs[0]!.state)
    expect(res.vertices.map((v) => v.description)).toEqual(['base', 'shared', 'web', 'api'])
    // One set of pools for the whole solve: the outputs' CPU work never overlapped on the one core.
    expect(max).toBe(1)
    expect(res.schedule.flatMap((r) => r.slots.filter((s) => s.pool === 'cpu'))).toHaveLength(3)
  })

  it('refuses a graph without outputs', async () => {
    const err = await solve({ vertices: [vertex('base')], outputs: [] }, fakeExecutors({ base: ok('base') }, new Map()), ctxOf()).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: ErrorCodes.GRAPH_INVALID })
  })

  it.each([1, 2, 3])('never runs more than the concurrency limit (%i) at once, and reaches it', async (limit) => {
    let inFlight = 0
    let max = 0
    const busy: Behaviour = async (inputs) => {
      max = Math.max(max, ++inFlight)
      for (let i = 0; i < 5; i++) await tick()
      inFlight--
      return { state: stateOf('x', inputs), cached: false }
    }
    const branches = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6']
    const g = graphOf([vertex('base'), ...branches.map((b) => vertex(b, ['base'])), vertex('join', branches)])
    const calls = new Map<string, number>()
    await solve(g, fakeExecutors(Object.fromEntries(['base', ...branches, 'join'].map((n) => [n, busy])), calls), ctxOf(), { concurrency: limit })
    expect(max).toBe(limit)
    expect([...calls.values()].every((n) => n === 1) && calls.size === 8).toBe(true)
  })

  it('a failing branch aborts its running siblings, starts nothing queued, and rejects with its own error once they settled', async () => {
    const calls = new Map<string, number>()
    const seen = new Map<string, { reason: unknown; released: boolean }>()
    const events: ProgressEvent[] = []
    const failure = new ImagesmithError(ErrorCodes.RUN_FAILED, 'RUN exited with 3', { exitCode: 3 })
    let started = 0
    const g = graphOf([
      vertex('base'),
      vertex('sleeper1', ['base']),
      vertex('sleeper2', ['base']),
      vertex('failing', ['base']),
      vertex('queued', ['base']),
      vertex('after', ['failing']),
      vertex('join', ['sleeper1', 'sleeper2', 'after', 'queued']),
    ])
    const p = solve(g, fakeExecutors({
      base: ok('base'),
      sleeper1: (i, s) => { started++; return untilAborted('sleeper1', seen)(i, s) },
      sleeper2: (i, s) => { started++; return untilAborted('sleeper2', seen)(i, s) },
      failing: async () => {
        // Fails once both siblings are running.
        while (started < 2) await tick()
        throw failure
      },
      queued: (i, s) => { started++; return untilAborted('queued', seen)(i, s) },
      after: ok('after'),
      join: ok('join'),
    }, calls), ctxOf(events), { concurrency: 3 })

    const err = await p.catch((e: unknown) => e)
    expect(err).toBe(failure)
    for (const name of ['sleeper1', 'sleeper2']) {
      expect(seen.get(name)?.reason).toBe(failure)
      expect(seen.get(name)?.released).toBe(true)
    }
    expect(calls.has('queued')).toBe(false)
    expect(calls.has('after')).toBe(false)
    expect(calls.has('join')).toBe(false)
    const errors = events.filter((e) => e.type === 'error')
    expect(errors[0]).toMatchObject({ vertex: 'sha256:failing', error: failure })
    expect(errors.slice(1).map((e) => e.type === 'error' && (e.error as ImagesmithError).code)).toEqual([ErrorCodes.ABORTED, ErrorCodes.ABORTED])
  })

  it('a wide graph (many vertices queued on one signal) raises no listener warning', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`)
    process.on('warning', onWarning)
    try {
      const branches = Array.from({ length: 40 }, (_, i) => `c${i}`)
      const g = graphOf([vertex('base'), ...branches.map((b) => vertex(b, ['base'])), vertex('join', branches)])
      await solve(g, fakeExecutors(Object.fromEntries(['base', ...branches, 'join'].map((n) => [n, ok(n)])), new Map()), ctxOf(), { concurrency: 2 })
      for (let i = 0; i < 5; i++) await tick()
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings).toEqual([])
  })

  it("the caller's abort cancels running vertices and the solve fails with ABORTED", async () => {
    const calls = new Map<string, number>()
    const seen = new Map<string, { reason: unknown; released: boolean }>()
    const controller = new AbortController()
    const g = graphOf([vertex('base'), vertex('sleeper', ['base']), vertex('queued', ['base']), vertex('join', ['sleeper', 'queued'])])
    const p = solve(g, fakeExecutors({
      base: ok('base'),
      sleeper: (i, s) => {
        setImmediate(() => controller.abort('stop'))
        return untilAborted('sleeper', seen)(i, s)
      },
      queued: ok('queued'),
      join: ok('join'),
    }, calls), ctxOf([], controller.signal), { concurrency: 1 })
    const err = await p.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ImagesmithError)
    expect((err as ImagesmithError).code).toBe(ErrorCodes.ABORTED)
    expect(seen.get('sleeper')?.released).toBe(true)
    expect(calls.has('queued')).toBe(false)
  })

  it('an already aborted signal starts nothing', async () => {
    const calls = new Map<string, number>()
    const controller = new AbortController()
    controller.abort()
    const err = await solve(graphOf([vertex('base')]), fakeExecutors({ base: ok('base') }, calls), ctxOf([], controller.signal)).catch((e: unknown) => e)
    expect((err as ImagesmithError).code).toBe(ErrorCodes.ABORTED)
    expect(calls.size).toBe(0)
  })

  describe('resource pools', () => {
    /** Holds a slot of `pool` for a few turns; without a pool, just a few turns. */
    const using = (pool: PoolName | undefined): Behaviour => async (inputs, _signal, ctx) => {
      const work = async () => { for (let i = 0; i < 5; i++) await tick() }
      await (pool ? ctx!.limits![pool].add(work) : work())
      return { state: stateOf('x', inputs), cached: false }
    }
    const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }) => a.start < b.end && b.start < a.end
    const stages = ['s1', 's2', 's3', 's4']
    const wide = graphOf([vertex('base'), ...stages.map((b) => vertex(b, ['base'])), vertex('join', stages)])

    it('vertices are not slot-limited themselves: four RUN-pool stages hold their slots at once, and the schedule says so', async () => {
      const calls = new Map<string, number>()
      const res = await solve(wide, fakeExecutors({ base: ok('base'), ...Object.fromEntries(stages.map((n) => [n, using('run')])), join: ok('join') }, calls), ctxOf(), { limits: { cpu: 1, run: 8, net: 1 } })
      const runSlots = res.schedule.filter((r) => stages.includes(r.description)).map((r) => {
        expect(r.slots.map((s) => s.pool)).toEqual(['run'])
        return r.slots[0]!
      })
      expect(runSlots).toHaveLength(4)
      // Every pair of RUN slots was held at the same moment: the latest start precedes the earliest end.
      expect(Math.max(...runSlots.map((s) => s.start))).toBeLessThanOrEqual(Math.min(...runSlots.map((s) => s.end)))
      expect(res.schedule.map((r) => r.description).sort()).toEqual(['base', 'join', ...stages].sort())
      const base = res.schedule.find((r) => r.description === 'base')!
      const join = res.schedule.find((r) => r.description === 'join')!
      for (const r of res.schedule.filter((x) => stages.includes(x.description))) {
        expect(r.start).toBeGreaterThanOrEqual(base.end)
        expect(join.start).toBeGreaterThanOrEqual(r.end)
      }
    })

    it('the CPU pool serialises what takes its slots (one core: never two layer writes at once) while the vertices themselves overlap', async () => {
      let inFlight = 0
      let max = 0
      const cpuWork: Behaviour = async (inputs, _signal, ctx) => {
        await ctx!.limits!.cpu.add(async () => {
          max = Math.max(max, ++inFlight)
          for (let i = 0; i < 5; i++) await tick()
          inFlight--
        })
        return { state: stateOf('x', inputs), cached: false }
      }
      const res = await solve(wide, fakeExecutors({ base: ok('base'), ...Object.fromEntries(stages.map((n) => [n, cpuWork])), join: ok('join') }, new Map()), ctxOf(), { limits: { cpu: 1 } })
      expect(max).toBe(1)
      const cpuSlots = res.schedule.flatMap((r) => r.slots.filter((s) => s.pool === 'cpu'))
      expect(cpuSlots).toHaveLength(4)
      for (const a of cpuSlots) for (const b of cpuSlots) if (a !== b) expect(overlaps(a, b)).toBe(false)
      // All four vertices had started before the first CPU slot was given back: they waited on the pool, not on the solver.
      const starts = res.schedule.filter((r) => stages.includes(r.description)).map((r) => r.start)
      expect(Math.max(...starts)).toBeLessThanOrEqual(Math.min(...cpuSlots.map((s) => s.end)))
    })

    it('a cancelled solve drops work still waiting for a pool slot', async () => {
      const ran: string[] = []
      const failing: Behaviour = async () => { await tick(); throw new ImagesmithError(ErrorCodes.RUN_FAILED, 'boom', {}) }
      const waiting = (name: string): Behaviour => async (inputs, signal, ctx) => {
        await ctx!.limits!.run.add(async () => {
          ran.push(name)
          await new Promise((r) => setTimeout(r, 20))
        }, { signal })
        return { state: stateOf(name, inputs), cached: false }
      }
      const err = await solve(wide, fakeExecutors({ base: ok('base'), s1: waiting('s1'), s2: waiting('s2'), s3: waiting('s3'), s4: failing, join: ok('join') }, new Map()), ctxOf(), { limits: { run: 1 } }).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'RUN_FAILED' })
      expect(ran).toEqual(['s1'])
    })
  })
})

describe('rootfs hints', () => {
  it('tells a step whether a later step assembles a filesystem holding its layer', async () => {
    const kinds: Record<string, AnyVertex['kind']> = { base: 'source', copyA: 'copy', env: 'config', run: 'run', copyLast: 'copy', other: 'source', copyOther: 'copy', copyFrom: 'copy' }
    const v = (name: string, inputs: readonly string[] = [], spec: object = {}): AnyVertex =>
      ({ ...vertex(name, inputs), kind: kinds[name]!, spec: spec as never }) as AnyVertex
    // base → copyA → env → run → copyLast; other → copyOther, read by copyFrom (COPY --from) on top of copyLast.
    const graph = graphOf([
      v('base'), v('copyA', ['base']), v('env', ['copyA']), v('run', ['env']), v('copyLast', ['run']),
      v('other'), v('copyOther', ['other']), v('copyFrom', ['copyLast', 'copyOther'], { fromInput: true }),
    ])
    const seen = new Map<string, boolean | undefined>()
    const behaviours: Record<string, Behaviour> = {}
    for (const name of Object.keys(kinds)) {
      behaviours[name] = async (inputs, _signal, ctx) => {
        seen.set(name, ctx?.step?.rootfsWanted)
        return { state: stateOf(name, inputs), cached: false }
      }
    }
    await solve(graph, fakeExecutors(behaviours, new Map()), ctxOf())
    expect(Object.fromEntries(seen)).toEqual({
      base: true, copyA: true, env: true, run: false, copyLast: false, other: true, copyOther: true, copyFrom: false,
    })
  })
})

describe('early start (a COPY while the RUNs before it run)', () => {
  const kinds: Record<string, AnyVertex['kind']> = { base: 'source', run1: 'run', run2: 'run', copy: 'copy', env: 'config' }
  const v = (name: string, inputs: readonly string[] = []): AnyVertex => ({ ...vertex(name, inputs), kind: kinds[name]! }) as AnyVertex
  const nameOf = (s: ImageState) => s.config.config.Labels?.name

  /** copy gets an `early` that records what it was started from and finishes on the real parent. */
  function executors(run: Behaviour, log: string[], early: 'ok' | 'reject' = 'ok'): ExecutorTable {
    const calls = new Map<string, number>()
    const table = fakeExecutors({ base: ok('base'), run1: run, run2: ok('run2'), env: ok('env'), copy: ok('copy') }, calls)
    return {
      ...table,
      copy: {
        kind: 'copy',
        exec: async (_v, inputs) => {
          log.push(`exec on ${nameOf(inputs[0]!)}`)
          return { state: stateOf('copy', inputs), cached: false }
        },
        early: async (_v, inputs) => {
          log.push(`early from ${nameOf(inputs[0]!)}`)
          if (early === 'reject') throw new Error('the guess needs the parent')
          return async (real) => {
            log.push(`finish on ${nameOf(real[0]!)}`)
            return { state: stateOf('copy', real), cached: false }
          }
        },
      },
    }
  }

  it('starts from the first non-RUN ancestor before the RUNs end, and finishes on the real parent', async () => {
    const log: string[] = []
    let releaseRun!: () => void
    const run1: Behaviour = (inputs) => new Promise((resolve) => { releaseRun = () => resolve({ state: stateOf('run1', inputs), cached: false }) })
    const solving = solve(graphOf([v('base'), v('run1', ['base']), v('run2', ['run1']), v('copy', ['run2'])]), executors(run1, log), ctxOf())
    for (let i = 0; i < 10; i++) await tick()
    expect(log).toEqual(['early from base']) // while run1 still runs
    releaseRun()
    const res = await solving
    expect(log).toEqual(['early from base', 'finish on run2'])
    expect(res.state.config.config.Labels).toEqual({ name: 'copy', from: 'run2' })
    const copy = res.schedule.find((s) => s.description === 'copy')!
    const run = res.schedule.find((s) => s.description === 'run1')!
    expect(copy.start).toBeLessThanOrEqual(run.end)
  })

  it('a parent that is no RUN: no early start', async () => {
    const log: string[] = []
    await solve(graphOf([v('base'), v('env', ['base']), v('copy', ['env'])]), executors(ok('run1'), log), ctxOf())
    expect(log).toEqual(['exec on env'])
  })

  it('an early start that rejects falls back to exec on the real parent', async () => {
    const log: string[] = []
    const res = await solve(graphOf([v('base'), v('run1', ['base']), v('copy', ['run1'])]), executors(ok('run1'), log, 'reject'), ctxOf())
    expect(log).toEqual(['early from base', 'exec on run1'])
    expect(res.state.config.config.Labels).toEqual({ name: 'copy', from: 'run1' })
  })

  it('when the RUN fails, the solve rejects with its error and the early COPY ends as aborted', async () => {
    const log: string[] = []
    const events: ProgressEvent[] = []
    const failure = new ImagesmithError(ErrorCodes.RUN_FAILED, 'RUN exited with 1', { exitCode: 1 })
    const failing: Behaviour = async () => {
      for (let i = 0; i < 5; i++) await tick()
      throw failure
    }
    const err = await solve(graphOf([v('base'), v('run1', ['base']), v('copy', ['run1'])]), executors(failing, log), ctxOf(events)).catch((e: unknown) => e)
    expect(err).toBe(failure)
    expect(log).toEqual(['early from base'])
    const copyError = events.find((e) => e.type === 'error' && e.description === 'copy')
    expect(copyError).toMatchObject({ error: { code: 'ABORTED' } })
  })
})
