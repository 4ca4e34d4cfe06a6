import { describe, expect, it } from 'vitest'
import { BUILD_PLATFORM, ErrorCodes, image, toDot } from '../../src/index.js'
import { compileGraph, compileOutputs, vertexId } from '../../src/graph/compile.js'
import type { Graph } from '../../src/graph/node.js'

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }
const app = () => image().from('scratch').copy('a.txt', '/a.txt').env('A', '1')

/** Every vertex comes after its inputs. */
function inputsFirst(g: Graph): boolean {
  const seen = new Set<string>()
  for (const v of g.vertices) {
    if (v.inputs.some((i) => !seen.has(i))) return false
    seen.add(v.id)
  }
  return true
}

describe('graph outputs', () => {
  it("a builder's graph has one output named default, with the platform it was compiled for", () => {
    const g = app().graph({ platform: amd64 })
    expect(g.outputs).toEqual([{ name: 'default', vertex: g.vertices.at(-1)!.id, platform: amd64 }])
    expect(app().graph().outputs).toEqual([{ name: 'default', vertex: app().graph().vertices.at(-1)!.id }])
  })

  it('holds the same steps for two platforms as two sets of vertices, each with its platform in its id', () => {
    const stage = app().toStage()
    const g = compileOutputs([
      { name: 'app', stage, platform: amd64 },
      { name: 'app', stage, platform: arm64 },
    ])
    const one = compileGraph(stage, { platform: amd64 })
    expect(g.vertices).toHaveLength(2 * one.vertices.length)
    expect(g.outputs.map((o) => o.platform)).toEqual([amd64, arm64])
    const [a, b] = g.outputs
    expect(a!.vertex).toBe(one.outputs[0]!.vertex)
    expect(b!.vertex).not.toBe(a!.vertex)
    for (const v of g.vertices) {
      expect(v.id).toBe(vertexId(v.kind, v.spec, v.inputs, v.platform))
    }
    expect(g.vertices.filter((v) => v.platform?.architecture === 'amd64')).toHaveLength(one.vertices.length)
    expect(g.vertices.filter((v) => v.platform?.architecture === 'arm64')).toHaveLength(one.vertices.length)
    expect(new Set(g.vertices.map((v) => v.id)).size).toBe(g.vertices.length)
    expect(g.platform).toBeUndefined()
    expect(inputsFirst(g)).toBe(true)
  })

  it('stores a step two outputs share once, and keeps each output', () => {
    const base = image().from('scratch').copy('shared.txt', '/shared.txt')
    const web = base.env('APP', 'web')
    const api = base.env('APP', 'api')
    const g = compileOutputs([
      { name: 'web', stage: web.toStage() },
      { name: 'api', stage: api.toStage() },
    ], { platform: amd64 })
    const sizes = [web.graph({ platform: amd64 }).vertices.length, api.graph({ platform: amd64 }).vertices.length]
    // scratch source and the COPY are shared; each ENV is its own.
    expect(g.vertices).toHaveLength(sizes[0]! + sizes[1]! - 2)
    expect(g.outputs.map((o) => [o.name, o.vertex])).toEqual([
      ['web', web.graph({ platform: amd64 }).outputs[0]!.vertex],
      ['api', api.graph({ platform: amd64 }).outputs[0]!.vertex],
    ])
    expect(g.platform).toEqual(amd64)
    expect(inputsFirst(g)).toBe(true)
    // Both outputs are drawn bold.
    expect(toDot(g).match(/style=bold/g)).toHaveLength(2)
  })

  it('refuses two outputs of one name and platform, and a graph without outputs', () => {
    const stage = app().toStage()
    expect(() => compileOutputs([{ name: 'app', stage, platform: amd64 }, { name: 'app', stage: image().from('scratch').toStage(), platform: amd64 }])).toThrow(
      expect.objectContaining({ code: ErrorCodes.GRAPH_INVALID, details: { output: 'app', platform: 'linux/amd64' } }),
    )
    expect(() => compileOutputs([])).toThrow(expect.objectContaining({ code: ErrorCodes.GRAPH_INVALID }))
  })

  it("a platform ARG declared without a default takes the target's (TARGET*) or the build machine's (BUILD*) value, in a BUILD_PLATFORM stage too", () => {
    const tool = image().from('scratch', { platform: BUILD_PLATFORM }).arg('TARGETARCH').arg('TARGETPLATFORM').arg('BUILDARCH').arg('TARGETVARIANT').arg('TARGETOS', 'mine')
    const argsOf = (g: Graph) => g.vertices.flatMap((v) => (v.kind === 'config' && (v.spec as { op: string }).op === 'arg' ? (v.spec as unknown as { args: { name: string; value?: string }[] }).args : []))
    const g = compileOutputs([{ name: 'tool', stage: tool.toStage(), platform: arm64 }], { buildPlatform: amd64 })
    expect(argsOf(g)).toEqual([
      { name: 'TARGETARCH', value: 'arm64' },
      { name: 'TARGETPLATFORM', value: 'linux/arm64' },
      { name: 'BUILDARCH', value: 'amd64' },
      { name: 'TARGETVARIANT', value: '' },
      // A default of the stage's own, and a --build-arg, win over the automatic value.
      { name: 'TARGETOS', value: 'mine' },
    ])
    const overridden = compileOutputs([{ name: 'tool', stage: tool.toStage(), platform: arm64 }], { buildPlatform: amd64, buildArgs: { TARGETARCH: 'x' } })
    expect(argsOf(overridden)[0]).toEqual({ name: 'TARGETARCH', value: 'x' })
    // Two targets: the build-platform stage's steps differ by TARGETARCH, so it is solved once per target (natively).
    const two = compileOutputs([{ name: 'tool', stage: tool.toStage(), platform: amd64 }, { name: 'tool', stage: tool.toStage(), platform: arm64 }], { buildPlatform: amd64 })
    expect(two.outputs[0]!.vertex).not.toBe(two.outputs[1]!.vertex)
    expect(two.vertices.every((v) => v.platform === undefined || v.platform.architecture === 'amd64')).toBe(true)
  })
})
