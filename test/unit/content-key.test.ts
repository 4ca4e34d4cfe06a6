/**
 * The COPY content key's bytes: per entry, the name's bytes, then `\0type\0mode(octal)\0uid:gid\0mtime\0`,
 * then the size and sha256 of a file, a link's target bytes or a device's numbers, then `\n`. Plain
 * text names and names with non-UTF-8 bytes (names.ts escapes) both hash to exactly these bytes.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { contentKey } from '../../src/context/content-key.js'
import type { LayerEntry } from '../../src/layer/entry.js'
import { nameBytes, nameFromBytes } from '../../src/util/names.js'

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const odd = nameFromBytes(Buffer.from([0x61, 0xff, 0x62])) // 'a', a byte that is not UTF-8, 'b'
const base = { uid: 1, gid: 2, mtime: 0 }
const entries: LayerEntry[] = [
  { ...base, path: 'app', mode: 0o755, type: 'dir' },
  { ...base, path: 'app/é.txt', mode: 0o644, type: 'file', size: 2, source: { data: Buffer.from('hi') } },
  { ...base, path: `app/${odd}`, mode: 0o600, type: 'file', size: 1, source: { data: Buffer.from('x') } },
  { ...base, path: 'app/l1', mode: 0o777, type: 'symlink', linkname: 'ünï' },
  { ...base, path: 'app/l2', mode: 0o777, type: 'symlink', linkname: odd },
  { ...base, path: 'app/h', mode: 0o644, type: 'hardlink', linkname: 'app/é.txt' },
  { ...base, path: 'app/null', mode: 0o666, type: 'char', devmajor: 1, devminor: 3 },
] as LayerEntry[]

/** The key as its documented bytes, written out one piece at a time. */
function expected(list: readonly LayerEntry[]): string {
  const h = createHash('sha256')
  for (const e of list) {
    h.update(nameBytes(e.path))
    h.update(`\0${e.type}\0${e.mode.toString(8)}\0${e.uid}:${e.gid}\0${e.mtime}\0`)
    if (e.type === 'file') h.update(`${e.size}\0${sha((e.source as { data: Buffer }).data)}`)
    if (e.type === 'symlink' || e.type === 'hardlink') h.update(nameBytes(e.linkname))
    if (e.type === 'char') h.update(`${e.devmajor},${e.devminor}`)
    h.update('\n')
  }
  return `sha256:${h.digest('hex')}`
}

describe('contentKey', () => {
  it('hashes each entry as its documented bytes, whether names are plain text or carry non-UTF-8 bytes', () => {
    expect(contentKey(entries)).toBe(expected(entries))
    for (const e of entries) expect(contentKey([e])).toBe(expected([e]))
    // Only bytes decide: the same names with one file's data changed give another key.
    const changed = entries.map((e) => (e.path === 'app/é.txt' ? { ...e, source: { data: Buffer.from('ho') } } : e)) as LayerEntry[]
    expect(contentKey(changed)).not.toBe(contentKey(entries))
  })

  it("reports each entry's contribution, link targets as their bytes read as latin1", () => {
    const seen = new Map<string, string>()
    contentKey(entries, undefined, (e, what) => seen.set(e.path, what))
    expect(seen.get('app/l1')).toBe(`symlink\x00777\x001:2\x000\0${Buffer.from('ünï').toString('latin1')}`)
    expect(seen.get('app/l2')).toBe(`symlink\x00777\x001:2\x000\0${nameBytes(odd).toString('latin1')}`)
    expect(seen.get('app/é.txt')).toBe(`file\x00644\x001:2\x000\x002\0${sha('hi')}`)
    expect(seen.get('app/null')).toBe(`char\x00666\x001:2\x000\x001,3`)
    expect(seen.get('app')).toBe(`dir\x00755\x001:2\x000\0`)
  })
})
