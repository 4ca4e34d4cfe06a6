import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { checkDiveRules, DIVE_DEFAULT_RULES, parseDiveRules } from '../../src/cli/dive-ci.js'
import { ErrorCodes } from '../../src/errors.js'
import { analyzeLayers, layerSteps, type LayerInput } from '../../src/insight/analyze.js'
import { diffFiles, finalFiles } from '../../src/insight/image-diff.js'
import { readLayerFiles, type LayerFile } from '../../src/insight/layer-files.js'
import { thrown } from '../helpers/thrown.js'

const file = (path: string, size: number, over: Partial<LayerFile> = {}): LayerFile => ({ path, kind: 'file', size, mode: 0o644, uid: 0, gid: 0, ...over })
const dir = (path: string): LayerFile => ({ path, kind: 'dir', size: 0, mode: 0o755, uid: 0, gid: 0 })
const whiteout = (path: string): LayerFile => ({ path, kind: 'whiteout', size: 0, mode: 0, uid: 0, gid: 0 })
const opaque = (path: string): LayerFile => ({ path, kind: 'opaque', size: 0, mode: 0, uid: 0, gid: 0 })
const layer = (step: string, files: LayerFile[]): LayerInput => ({ digest: `sha256:${step}`, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', compressedSize: 1, tarBytes: 1, step, files })

describe('layer insight', () => {
  it('a whited-out directory hides every file under it; dive sizes that whiteout by what it deletes', () => {
    const r = analyzeLayers([
      layer('base', [dir('app'), file('app/a', 100), file('app/sub/b', 50), file('keep', 10)]),
      layer('rm', [whiteout('app')]),
    ])
    expect(r.wastedBytes).toBe(150)
    expect(r.wasted.map((w) => [w.path, w.how, w.addedBy.step, w.hiddenBy.step])).toEqual([
      ['app/a', 'deleted', 'base', 'rm'], ['app/sub/b', 'deleted', 'base', 'rm'],
    ])
    // dive: leaves app/a 100, app/sub/b 50, keep 10; then `app` (a whiteout of a directory) 150
    expect(r.dive.efficiency).toBeCloseTo(310 / 310, 12)
    expect(r.dive.wastedBytes).toBe(0)
    expect(r.layers[1]).toMatchObject({ removed: 1, added: 0, changed: 0 })
  })

  it("a file's whiteout weighs 0 in dive's sums, so the deleted file is all waste (dive's efficiency.go)", () => {
    const r = analyzeLayers([
      layer('base', [file('x', 10)]),
      layer('copy', [file('big', 1000)]),
      layer('rm', [whiteout('big')]),
    ])
    expect(r.dive.wastedBytes).toBe(1000)
    expect(r.dive.efficiency).toBeCloseTo(10 / 1010, 12)
    expect(r.dive.userSizeBytes).toBe(1000)
    expect(r.dive.userWastedPercent).toBe(1)
  })

  it('an opaque directory hides what lower layers had in it, not what its own layer puts there', () => {
    const r = analyzeLayers([
      layer('base', [dir('d'), file('d/old', 7)]),
      layer('opq', [dir('d'), opaque('d'), file('d/new', 3)]),
    ])
    expect(r.wasted).toEqual([{ path: 'd/old', size: 7, how: 'deleted', addedBy: { layer: 0, step: 'base' }, hiddenBy: { layer: 1, step: 'opq' } }])
    expect([...finalFiles([layer('base', [dir('d'), file('d/old', 7)]), layer('opq', [dir('d'), opaque('d'), file('d/new', 3)])]).keys()].sort()).toEqual(['d', 'd/new'])
  })

  it('a file that replaces a directory hides the files under it', () => {
    const r = analyzeLayers([layer('a', [file('p/q', 5)]), layer('b', [file('p', 1)])])
    expect(r.wasted.map((w) => [w.path, w.how])).toEqual([['p/q', 'overwritten']])
    expect(r.layers[1]).toMatchObject({ changed: 1, added: 0 })
  })

  it('steps come from history entries that made a layer; a history that does not match names none', () => {
    const h = [{ created_by: 'FROM' }, { created_by: 'ENV A=1', empty_layer: true }, { created_by: 'COPY' }]
    expect(layerSteps(h, 2)).toEqual(['FROM', 'COPY'])
    expect(layerSteps(h, 3)).toEqual([undefined, undefined, undefined])
  })

  it('diff compares content, size, mode and owner, not what stayed the same', () => {
    const a = finalFiles([layer('a', [file('same', 3, { sha256: 'x' }), file('c', 3, { sha256: 'x' }), file('m', 1, { sha256: 'y' }), file('gone', 1)])])
    const b = finalFiles([layer('b', [file('same', 3, { sha256: 'x' }), file('c', 3, { sha256: 'z' }), file('m', 1, { sha256: 'y', mode: 0o755, uid: 1000 }), file('new', 2)])])
    expect(diffFiles(a, b)).toEqual({
      added: [{ path: 'new', kind: 'file', size: 2 }],
      removed: [{ path: 'gone', kind: 'file', size: 1 }],
      changed: [{ path: 'c', changes: { content: true } }, { path: 'm', changes: { mode: ['0644', '0755'], uid: [0, 1000] } }],
    })
  })
})

describe('reading a layer', () => {
  it('a corrupt gzip stream or a tar that is not one is a typed error naming the layer', async () => {
    // An empty tar (two zero blocks) whose gzip checksum is wrong: zlib fails once the tar has ended.
    const badCrc = gzipSync(Buffer.alloc(1024))
    badCrc[badCrc.length - 8]! ^= 0xff
    await expect(readLayerFiles(Readable.from([badCrc]), 'sha256:crc')).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, details: { layer: 'sha256:crc' } })
    await expect(readLayerFiles(Readable.from([gzipSync(Buffer.alloc(1024, 0x41))]), 'sha256:junk')).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, details: { layer: 'sha256:junk', offset: 0 } })
  })
})

describe('.dive-ci', () => {
  const figures = { efficiency: 0.5, wastedBytes: 30_000_000, userSizeBytes: 100_000_000, userWastedPercent: 0.3, inefficient: [] }

  it("reads dive's keys, sizes and disabled values; unnamed rules keep dive's defaults", () => {
    expect(parseDiveRules('rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20Mb\n', '.dive-ci')).toEqual({ lowestEfficiency: 0.95, highestWastedBytes: 20_000_000, highestUserWastedPercent: 0.1 })
    expect(parseDiveRules('rules:\n  lowest-efficiency: disabled\n  highest_user_wasted_percent: "0.5"\n', '.dive-ci')).toEqual({ highestUserWastedPercent: 0.5 })
    expect(parseDiveRules('', '.dive-ci')).toEqual(DIVE_DEFAULT_RULES)
  })

  it('fails as dive compares: efficiency below, wasted bytes or user percent above', () => {
    const results = checkDiveRules({ lowestEfficiency: 0.5, highestWastedBytes: 20_000_000, highestUserWastedPercent: 0.3 }, figures)
    expect(results.map((r) => [r.rule, r.passed])).toEqual([['lowestEfficiency', true], ['highestWastedBytes', false], ['highestUserWastedPercent', true]])
  })

  it('a line that is no rule is a typed error naming the line', () => {
    const e = thrown(() => parseDiveRules('rules:\n  lowestEfficency: 0.9\n', 'x/.dive-ci'))
    expect(e).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, details: { path: 'x/.dive-ci', line: 2 } })
    expect(thrown(() => parseDiveRules('rules:\n  highestWastedBytes: lots\n', 'f'))).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, details: { line: 2 } })
  })
})
