import { afterEach, describe, expect, it, vi } from 'vitest'
import { progressMode, progressRenderer, rawJson } from '../../src/cli/progress.js'
import { ExecError } from '../../src/errors.js'
import type { BuildResult } from '../../src/pipeline/options.js'
import type { Digest } from '../../src/oci/media-types.js'
import type { ProgressEvent } from '../../src/solver/types.js'

const A = 'sha256:aa' as Digest
const B = 'sha256:bb' as Digest

const events: ProgressEvent[] = [
  { type: 'start', vertex: A, description: 'COPY . /app', stage: 'app', time: 0 },
  { type: 'cached', vertex: A, description: 'COPY . /app' },
  { type: 'done', vertex: A, description: 'COPY . /app', ms: 10, cached: true },
  { type: 'start', vertex: B, description: 'RUN make', time: 0 },
  { type: 'log', vertex: B, stream: 'stdout', data: Buffer.from('one\ntwo\nthree\nfour\nfive\nsix\nseven\n') },
  { type: 'done', vertex: B, description: 'RUN make', ms: 2500, cached: false, reason: 'env changed: CC' },
]

const result = {
  digest: 'sha256:dd' as Digest,
  layers: [{}, {}],
  cacheHits: 1,
  vertices: [
    { vertex: A, description: 'COPY . /app', key: 'sha256:k1', cached: true, ms: 10 },
    { vertex: B, description: 'RUN make', key: 'sha256:k2', cached: false, ms: 2500, reason: 'env changed: CC' },
  ],
} as unknown as BuildResult

describe('CLI progress rendering', () => {
  it('auto is the live view on a terminal, plain lines elsewhere', () => {
    expect(progressMode('auto', true)).toBe('tty')
    expect(progressMode('auto', false)).toBe('plain')
    expect(progressMode('rawjson', true)).toBe('rawjson')
  })

  it('the live view redraws in place: per-step status, cached marks, the reason, and a summary', () => {
    let out = ''
    const r = progressRenderer('tty', { err: (s) => (out += s) }, () => 0)
    for (const e of events.slice(0, 5)) r.onEvent(e)
    r.finish() // a frame while RUN runs would show its last lines; the final frame does not
    const running = out
    expect(running).toContain('#1 [app] COPY . /app  CACHED')
    expect(running).toContain('#2 RUN make  ...')
    r.onEvent(events[5]!)
    r.finish(result, '/tmp/x.tar')
    expect(out.slice(running.length)).toMatch(/^\x1b\[2A\r\x1b\[J/) // back over the previous 2-line frame
    expect(out).toContain('#2 RUN make  DONE 2.5s (rebuilt: env changed: CC)')
    expect(out).toContain('built sha256:dd in 0.00s (2 layers, 1 cached; steps: 1 built, 1 cached, 2 in all)')
    expect(out).toContain('output: /tmp/x.tar')
  })

  it('plain prints one line per event with the reason on the rebuilt step', () => {
    let out = ''
    const r = progressRenderer('plain', { err: (s) => (out += s) })
    for (const e of events) r.onEvent(e)
    expect(out.split('\n')).toEqual([
      '#1 [app] COPY . /app', '#1 CACHED', '#1 DONE 0.01s',
      '#2 RUN make', '#2 one', '#2 two', '#2 three', '#2 four', '#2 five', '#2 six', '#2 seven',
      '#2 DONE 2.50s (rebuilt: env changed: CC)', '',
    ])
  })

  it('rawjson: one parseable line per event, output bytes as base64, errors as message and code', () => {
    const log = JSON.parse(rawJson(events[4]!)) as { data: string }
    expect(Buffer.from(log.data, 'base64').toString()).toContain('seven')
    const err = Object.assign(new Error('boom'), { code: 'RUN_FAILED' })
    expect(JSON.parse(rawJson({ type: 'error', vertex: B, description: 'RUN make', error: err }))).toMatchObject({ error: { message: 'boom', code: 'RUN_FAILED' } })
    let out = ''
    const r = progressRenderer('rawjson', { err: (s) => (out += s) })
    for (const e of events) r.onEvent(e)
    expect(out.trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type)).toEqual(events.map((e) => e.type))
  })

  it('quiet prints nothing', () => {
    let out = ''
    const r = progressRenderer('quiet', { err: (s) => (out += s) })
    for (const e of events) r.onEvent(e)
    r.finish(result)
    expect(out).toBe('')
  })

  describe('plain output lines', () => {
    afterEach(() => {
      vi.useRealTimers()
    })
    const log = (stream: 'stdout' | 'stderr', text: string | Buffer): ProgressEvent => ({ type: 'log', vertex: B, stream, data: Buffer.isBuffer(text) ? text : Buffer.from(text) })
    const plain = (opts = {}) => {
      let out = ''
      const r = progressRenderer('plain', { err: (s) => (out += s) }, () => 0, opts)
      r.onEvent({ type: 'start', vertex: B, description: 'RUN make', time: 0 })
      return { r, out: () => out.split('\n').slice(1) }
    }

    it('a line written in pieces is one line (set -x, a download printing dots), per stream; UTF-8 split across chunks stays whole', () => {
      const { r, out } = plain()
      r.onEvent(log('stderr', '+ '))
      r.onEvent(log('stdout', 'Downloading'))
      r.onEvent(log('stderr', 'echo one\n'))
      r.onEvent(log('stdout', ' .'))
      r.onEvent(log('stdout', ' . done\nnext\n'))
      const euro = Buffer.from('€\n')
      r.onEvent(log('stdout', euro.subarray(0, 1)))
      r.onEvent(log('stdout', euro.subarray(1)))
      r.finish()
      expect(out()).toEqual(['#1 + echo one', '#1 Downloading . . done', '#1 next', '#1 €', ''])
    })

    it('a partial line is printed after a while without its end, and at the end of its step before its status', () => {
      vi.useFakeTimers()
      const { r, out } = plain({ partialLineMs: 1000 })
      r.onEvent(log('stdout', 'Downloading'))
      vi.advanceTimersByTime(999)
      expect(out()).toEqual([''])
      vi.advanceTimersByTime(1)
      expect(out()).toEqual(['#1 Downloading', ''])
      r.onEvent(log('stdout', ' . done'))
      r.onEvent({ type: 'done', vertex: B, description: 'RUN make', ms: 10 })
      expect(out()).toEqual(['#1 Downloading', '#1  . done', '#1 DONE 0.01s', ''])
      vi.advanceTimersByTime(5000)
      expect(out().length).toBe(4)
    })

    it("a failed step's output is printed once: the ERROR line is the headline", () => {
      const { r, out } = plain()
      r.onEvent(log('stderr', 'compile error in x.c\n'))
      r.onEvent({ type: 'error', vertex: B, description: 'RUN make', error: new ExecError(['/bin/sh', '-c', 'make'], 2, 'compile error in x.c') })
      r.finish()
      expect(out().filter((l) => l.includes('compile error in x.c'))).toEqual(['#1 compile error in x.c'])
      expect(out()).toContain('#1 ERROR: RUN ["/bin/sh","-c","make"] exited with code 2 (its output is above)')
    })
  })
})
