import { describe, expect, it } from 'vitest'
import { ErrorCodes, image } from '../../src/index.js'

const base = () => image().from('oci-archive:/tmp/base.tar')
const lastSpec = (b: ReturnType<typeof base>) => b.toStage().steps.at(-1)!.spec as unknown as Record<string, unknown>

describe('$VAR expansion in the IR (graph/expansion.ts)', () => {
  it('literal words carry no marker, so specs (and vertex keys) of literal builders are what they were', () => {
    expect(lastSpec(base().workdir('/app'))).toEqual({ op: 'workdir', path: '/app' })
    expect(lastSpec(base().copy('a', '/b'))).not.toHaveProperty('expand')
    expect(base().workdir('$HOME').graph().outputs[0]!.vertex).toBe(base().workdir('$HOME', { expand: false }).graph().outputs[0]!.vertex)
  })

  it('marked words are kept as written, with the marker, and the marker is part of the vertex key', () => {
    const marked = base().workdir('$HOME', { expand: true })
    expect(lastSpec(marked)).toEqual({ op: 'workdir', path: '$HOME', expand: true })
    expect(marked.graph().outputs[0]!.vertex).not.toBe(base().workdir('$HOME').graph().outputs[0]!.vertex)
    // Deterministic: the same words give the same key.
    expect(marked.graph().outputs[0]!.vertex).toBe(base().workdir('$HOME', { expand: true }).graph().outputs[0]!.vertex)
    expect(lastSpec(base().copy('$SRC', '$DEST/', { expand: true, chown: '$UID', chmod: '$MODE', escapeToken: '`' }))).toMatchObject({
      sources: ['$SRC'], dest: '$DEST/', chown: '$UID', chmod: '$MODE', expand: true, escapeToken: '`',
    })
  })

  it('value checks that need the value wait for expansion when the word is marked', () => {
    expect(() => base().expose('$PORT')).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_PORT }))
    expect(lastSpec(base().expose('$PORT', { expand: true }))).toEqual({ op: 'expose', ports: ['$PORT'], expand: true })
    expect(() => base().copy('a', '/b', { chmod: '$M' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }))
    expect(() => base().stopSignal('$SIG')).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_SIGNAL }))
    expect(lastSpec(base().stopSignal('$SIG', { expand: true }))).toEqual({ op: 'stopsignal', signal: '$SIG', expand: true })
  })

  it('a --build-arg value replaces a marked ARG default with a literal one', () => {
    const b = base().arg('V', '${OTHER}', { expand: true })
    expect(lastSpec(b)).toEqual({ op: 'arg', args: [{ name: 'V', value: '${OTHER}', expand: true }] })
    const g = b.graph({ buildArgs: { V: '$literal' } })
    const v = g.vertices.find((x) => x.id === g.outputs[0]!.vertex)!
    expect(v.spec).toEqual({ op: 'arg', args: [{ name: 'V', value: '$literal' }] })
  })
})
