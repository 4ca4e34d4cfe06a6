import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { Store } from '../../src/store/store.js'
import { digestOf } from '../../src/util/canonical-json.js'

let tmp: string
let context: string
let cacheDir: string

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ism-records-'))
  context = join(tmp, 'ctx')
  cacheDir = join(tmp, 'store')
  mkdirSync(context)
  writeFileSync(join(context, 'a.txt'), 'one\n')
  writeFileSync(join(context, 'b.txt'), 'two\n')
})
afterEach(() => rmSync(tmp, { recursive: true, force: true }))

const app = () => image().from('scratch').copy('a.txt', '/app/').workdir('/srv').add('b.txt', '/srv/b.txt').label('k', 'v')

describe('BuildResult.vertices', () => {
  it('lists every step in order with the cache key, the document it was hashed from, and whether it was cached', async () => {
    const first = await app().build({ context, cacheDir })
    expect(first.vertices.map((v) => v.description)).toHaveLength(app().graph().vertices.length)
    const layered = first.vertices.filter((v) => v.key !== undefined)
    expect(layered.map((v) => v.description)).toEqual([expect.stringContaining('COPY'), expect.stringContaining('WORKDIR'), expect.stringContaining('ADD')])
    for (const v of first.vertices) {
      expect(v.cached).toBe(false)
      expect(v.ms).toBeGreaterThanOrEqual(0)
      if (v.key) expect(digestOf(v.keyDoc)).toBe(v.key)
    }
    // The cache index keeps the document beside the layer.
    const store = new Store(cacheDir)
    for (const v of layered) {
      const entry = await store.cache.lookup<{ layer: { digest: string }; keyDoc: unknown }>(v.key!)
      expect(entry?.keyDoc).toEqual(v.keyDoc)
      expect(first.layers.map((l) => l.digest)).toContain(entry?.layer.digest)
    }

    const again = await app().build({ context, cacheDir })
    expect(again.vertices.filter((v) => v.key).map((v) => [v.key, v.cached])).toEqual(layered.map((v) => [v.key, true]))

    // A changed source changes the COPY's document (its content key) and so its key; the miss shows why.
    writeFileSync(join(context, 'a.txt'), 'changed\n')
    const changed = await app().build({ context, cacheDir })
    const [before, after] = [layered[0]!, changed.vertices.find((v) => v.description === layered[0]!.description)!]
    expect(after.cached).toBe(false)
    expect(after.key).not.toBe(before.key)
    const differing = Object.keys(after.keyDoc!).filter((k) => JSON.stringify(after.keyDoc![k]) !== JSON.stringify(before.keyDoc![k]))
    expect(differing).toEqual(['content'])
  })
})
