import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { addTree, EntrySet } from '../../src/context/collect.js'
import { fsPath, nameBytes, nameFromBytes } from '../../src/util/names.js'

const root = mkdtempSync(join(tmpdir(), 'ism-collect-names-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('context walk names', () => {
  it('keeps raw (non-UTF-8) names, real U+FFFD names and plain names exactly, wherever they sit', () => {
    const raw = nameFromBytes(Buffer.from([0x61, 0xff, 0x62])) // 'a', a byte that is not UTF-8, 'b'
    const dir = join(root, 'ctx')
    mkdirSync(join(dir, 'plain', 'sub'), { recursive: true })
    writeFileSync(join(dir, 'plain', 'sub', 'f.txt'), 'x')
    mkdirSync(fsPath(join(dir, raw)) as Buffer)
    writeFileSync(fsPath(join(dir, raw, 'inner.txt')), 'yy')
    mkdirSync(join(dir, 'rep-\uFFFD'))
    writeFileSync(join(dir, 'rep-\uFFFD', 'g.txt'), 'zzz')
    const set = new EntrySet()
    addTree(set, { hostDir: `${dir}/`, rootRel: '', dest: 'app' }, { owner: { uid: 0, gid: 0 }, mtime: 0 })
    const byPath = new Map(set.finalize().map((e) => [e.path, e]))
    expect([...byPath.keys()].sort()).toEqual([
      'app/plain', 'app/plain/sub', 'app/plain/sub/f.txt', `app/${raw}`, `app/${raw}/inner.txt`, 'app/rep-\uFFFD', 'app/rep-\uFFFD/g.txt',
    ].sort())
    const inner = byPath.get(`app/${raw}/inner.txt`)!
    expect(inner.type === 'file' && inner.size).toBe(2)
    expect(inner.type === 'file' && 'path' in inner.source && nameBytes(inner.source.path).equals(Buffer.concat([Buffer.from(`${dir}/a`), Buffer.from([0xff]), Buffer.from('b/inner.txt')]))).toBe(true)
    const g = byPath.get('app/rep-\uFFFD/g.txt')!
    expect(g.type === 'file' && 'path' in g.source && g.source.path).toBe(join(dir, 'rep-\uFFFD', 'g.txt'))
    const f = byPath.get('app/plain/sub/f.txt')!
    expect(f.type === 'file' && 'path' in f.source && f.source.path).toBe(join(dir, 'plain', 'sub', 'f.txt'))
  })
})
