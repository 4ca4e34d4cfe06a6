import { describe, expect, it } from 'vitest'
import { progressMode, progressRenderer, rawJson } from '../../src/cli/progress.js'
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
})
