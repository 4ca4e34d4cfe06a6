import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { detectRuntime } from '../../src/runtime/detect.js'
import { Store } from '../../src/store/store.js'
import { hostIdentity, rememberedProbe } from '../../src/store/probe-record.js'

const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'imagesmith-probe-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const isNumber = (v: unknown): v is number => typeof v === 'number'

describe('rememberedProbe', () => {
  it('answers a later call of the same identity from the record, and probes again for another', async () => {
    const root = tmp()
    const dir = join(root, 'probes')
    let runs = 0
    const probe = async () => ++runs
    expect(await rememberedProbe(dir, root, 'p', ['a'], isNumber, probe)).toBe(1)
    expect(await rememberedProbe(dir, root, 'p', ['a'], isNumber, probe)).toBe(1)
    expect(runs).toBe(1)
    expect(await rememberedProbe(dir, root, 'p', ['b'], isNumber, probe)).toBe(2)
    expect(await rememberedProbe(dir, root, 'q', ['a'], isNumber, probe)).toBe(3)
    expect(readdirSync(dir)).toHaveLength(3)
    const [file] = readdirSync(dir)
    const doc = JSON.parse(readFileSync(join(dir, file!), 'utf8')) as { identity: string[] }
    expect(doc.identity.slice(1, -1)).toEqual(hostIdentity(root))
  })

  it('trusts no record it cannot read, of another identity or of the wrong shape; records no failure and nothing `keep` refuses', async () => {
    const root = tmp()
    const dir = join(root, 'probes')
    let runs = 0
    const probe = async () => ++runs
    await rememberedProbe(dir, root, 'p', ['a'], isNumber, probe)
    const [file] = readdirSync(dir)
    const path = join(dir, file!)
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { identity: string[]; value: unknown }
    writeFileSync(path, '{"identity":')
    expect(await rememberedProbe(dir, root, 'p', ['a'], isNumber, probe)).toBe(2)
    writeFileSync(path, JSON.stringify({ ...doc, identity: [...doc.identity.slice(0, -1), 'other'] }))
    expect(await rememberedProbe(dir, root, 'p', ['a'], isNumber, probe)).toBe(3)
    writeFileSync(path, JSON.stringify({ ...doc, value: 'seven' }))
    expect(await rememberedProbe(dir, root, 'p', ['a'], isNumber, probe)).toBe(4)
    expect(await rememberedProbe(dir, root, 'p', ['a'], isNumber, probe)).toBe(4)

    await expect(rememberedProbe(dir, root, 'f', [], isNumber, () => Promise.reject(new Error('no')))).rejects.toThrow('no')
    expect(await rememberedProbe(dir, root, 'k', [], isNumber, probe, () => false)).toBe(5)
    expect(await rememberedProbe(dir, root, 'k', [], isNumber, probe, () => false)).toBe(6)
    expect(readdirSync(dir)).toHaveLength(1)
  })
})

describe.runIf(process.platform === 'linux' && process.getuid?.() === 0)('runtime detection across processes', () => {
  it('runs the trial container once per store and runtime binary; a replaced binary is tried again', async () => {
    const root = tmp()
    const bin = tmp()
    const runtime = join(bin, 'fake-runtime')
    const log = join(bin, 'trials')
    // A runtime that "runs" the trial by echoing the marker from the bundle's config.json.
    writeFileSync(runtime, `#!/bin/sh\n[ "$1" = run ] || exit 0\necho trial >> ${log}\ngrep -o 'imagesmith-trial-[0-9a-f]*' "$3/config.json" | head -n 1\n`)
    chmodSync(runtime, 0o755)
    const trials = () => readFileSync(log, 'utf8').split('\n').filter(Boolean).length
    // A fresh Store per call: nothing shared in memory, as in separate processes.
    const detect = () => detectRuntime({ preferred: runtime, store: new Store(root) })
    expect((await detect()).binary).toBe(runtime)
    expect((await detect()).binary).toBe(runtime)
    expect(trials()).toBe(1)
    utimesSync(runtime, new Date(), new Date(Date.now() + 5000))
    expect((await detect()).binary).toBe(runtime)
    expect(trials()).toBe(2)
  })
})
