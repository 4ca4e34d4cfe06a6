import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import { addExecutor } from '../../src/ops/add.js'
import type { AddSpec } from '../../src/graph/nodes/add-node.js'
import type { Vertex } from '../../src/graph/node.js'
import type { LayerRef } from '../../src/oci/types.js'
import type { ExecContext, ImageState } from '../../src/solver/types.js'
import { Store } from '../../src/store/store.js'

// Names in this file are latin1 strings: one char per byte, so '\xe9' is the single byte 0xE9
// (not valid UTF-8 on its own) and 'caf\xc3\xa9' is "café" in UTF-8.
const B = (s: string): Buffer => Buffer.from(s, 'latin1')

let tmp: string
let context: string
let store: Store

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'imagesmith-addnames-'))
  context = join(tmp, 'context')
  mkdirSync(context)
  store = new Store(join(tmp, 'store'))
})

afterEach(() => {
  rmSync(tmp, { recursive: true, force: true })
})

const storeTmp = (): string[] => (existsSync(join(store.root, 'tmp')) ? readdirSync(join(store.root, 'tmp')) : [])

const scratch = (): ImageState => ({
  config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
  layers: [], args: [], cmdSet: false,
})

async function add(src: string, dest = '/dst/'): Promise<LayerRef> {
  const v: Vertex<'add'> = {
    id: `sha256:${'0'.repeat(64)}`, kind: 'add', inputs: [], meta: { description: '' },
    spec: { fromInput: false, exclude: [], link: false, unpack: true, sources: [src], dest } satisfies AddSpec,
  }
  const ctx: ExecContext = {
    store, contextDir: context, epoch: 1_700_000_000, clampRunMtimes: false, created: '2023-11-14T22:13:20Z',
    platform: { os: 'linux', architecture: 'amd64' }, noCache: false, compression: 'gzip', secrets: {}, network: 'default',
    emit: () => {},
  }
  return (await addExecutor.exec(v, [scratch()], ctx)).state.layers.at(-1)!
}

/**
 * The layer's entries as GNU tar lists them, names and link targets as raw bytes (latin1 strings):
 * name → "<type char><link target>" ('-' file, 'd' dir, 'l' symlink, 'h' hard link).
 */
async function layerNames(layer: LayerRef): Promise<Map<string, string>> {
  const chunks: Buffer[] = []
  for await (const c of store.blobs.open(layer.digest)) chunks.push(c as Buffer)
  const listing = execFileSync('tar', ['--quoting-style=literal', '-tvf', '-'], { input: gunzipSync(Buffer.concat(chunks)) }).toString('latin1')
  const out = new Map<string, string>()
  for (const line of listing.split('\n').filter((l) => l !== '')) {
    // "<mode> <owner> <size> <date> <time> <name>[ -> <target>| link to <target>]"
    const m = /^(\S)\S* +\S+ +\S+ +\S+ +\S+ (.*)$/.exec(line)!
    const [name, target] = m[1] === 'l' ? m[2]!.split(' -> ') : m[1] === 'h' ? m[2]!.split(' link to ') : [m[2]!, '']
    out.set(name!.replace(/\/$/, ''), `${m[1]}${target}`)
  }
  return out
}

interface RawEntry {
  name: Buffer
  type?: '0' | '1' | '2' | '5' | 'x' | 'L' | 'K'
  data?: Buffer
  linkname?: Buffer
  prefix?: Buffer
  /** Magic and version: POSIX ustar (default) or GNU's "ustar  \0". */
  gnu?: boolean
  /** Size field as written (bodies of meta entries are `data`). */
  size?: number
}

/** A tar written byte by byte: every name field holds exactly the bytes given. */
function rawTar(entries: RawEntry[], end = true): Buffer {
  const blocks: Buffer[] = []
  for (const e of entries) {
    const h = Buffer.alloc(512)
    const data = e.data ?? Buffer.alloc(0)
    const octal = (v: number, off: number, len: number) => h.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1')
    e.name.copy(h, 0, 0, 100)
    octal(0o644, 100, 8)
    octal(1000, 108, 8)
    octal(1000, 116, 8)
    const type = e.type ?? '0'
    octal(e.size ?? (type === '0' || type === 'x' || type === 'L' || type === 'K' ? data.length : 0), 124, 12)
    octal(1_600_000_000, 136, 12)
    h.write(type, 156, 1, 'latin1')
    e.linkname?.copy(h, 157, 0, 100)
    h.write(e.gnu ? 'ustar  \0' : 'ustar\x0000', 257, 8, 'latin1')
    e.prefix?.copy(h, 345, 0, 155)
    h.fill(0x20, 148, 156)
    let sum = 0
    for (const b of h) sum += b
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1')
    blocks.push(h)
    if (data.length > 0) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512))
  }
  if (end) blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

/** One PAX record, "<len> <key>=<value>\n", value as raw bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  const rest = key.length + value.length + 3
  let len = rest + String(rest).length
  if (String(len).length !== String(rest).length) len++
  return Buffer.concat([B(`${len} ${key}=`), value, B('\n')])
}
const pax = (records: Array<[string, string]>): RawEntry => ({ name: B('PaxHeaders/x'), type: 'x', data: Buffer.concat(records.map(([k, v]) => paxRecord(k, B(v)))) })

const long = (stem: string, n: number): string => stem.repeat(Math.ceil(n / stem.length)).slice(0, n)

describe('ADD keeps archive entry names as bytes', () => {
  const cases: Array<[string, RawEntry[], Array<[string, string]>]> = [
    ['a ustar name', [{ name: B('caf\xe9'), data: B('x') }, { name: B('caf\xc3\xa9'), data: B('y') }],
      [['dst/caf\xe9', '-'], ['dst/caf\xc3\xa9', '-']]],
    ['a ustar prefix', [{ prefix: B('d\xe9j\xe0'), name: B('f\xff'), data: B('x') }],
      [['dst/d\xe9j\xe0', 'd'], ['dst/d\xe9j\xe0/f\xff', '-']]],
    ['a PAX path', [pax([['path', `p\xe9/${long('n\xe9', 150)}`]]), { name: B('placeholder'), data: B('x') }],
      [['dst/p\xe9', 'd'], [`dst/p\xe9/${long('n\xe9', 150)}`, '-']]],
    ['a PAX linkpath of a symlink', [pax([['linkpath', `t\xe9/${long('\xe8', 120)}`]]), { name: B('s'), type: '2', linkname: B('placeholder') }],
      [['dst/s', `lt\xe9/${long('\xe8', 120)}`]]],
    ['a PAX linkpath of a hard link', [{ name: B('caf\xe9'), data: B('x') }, pax([['linkpath', 'caf\xe9']]), { name: B('h'), type: '1', linkname: B('placeholder') }],
      [['dst/caf\xe9', '-'], ['dst/h', 'hdst/caf\xe9']]],
    ['a GNU long name and long link', [
      { name: B('././@LongLink'), type: 'L', data: B(`${long('g\xe9/', 130)}f\0`), gnu: true },
      { name: B('placeholder'), data: B('x'), gnu: true },
      { name: B('././@LongLink'), type: 'K', data: B(`${long('k\xe9', 110)}\0`), gnu: true },
      { name: B('sym\xe9'), type: '2', linkname: B('placeholder'), gnu: true },
    ], [[`dst/${long('g\xe9/', 130)}f`, '-'], ['dst/sym\xe9', `l${long('k\xe9', 110)}`]]],
  ]
  for (const [what, entries, want] of cases) {
    it(`${what}: the layer entry has exactly the archive's bytes`, async () => {
      writeFileSync(join(context, 'a.tar'), rawTar(entries))
      const names = await layerNames(await add('a.tar'))
      for (const [name, typeAndTarget] of want) expect([name, names.get(name)]).toEqual([name, typeAndTarget])
      // Nothing else came in under another spelling (U+FFFD's UTF-8 bytes, say).
      expect([...names.keys()].filter((n) => n.includes('\xef\xbf\xbd'))).toEqual([])
    })
  }

  for (const format of ['ustar', 'pax', 'gnu'] as const) {
    it(`an archive GNU tar writes with --format=${format}: names, prefixes, long names and link targets keep their bytes`, async () => {
      const src = join(tmp, 'src')
      // Over 100 bytes with a '/' to split at: ustar puts the directory into the prefix, pax into a
      // path record, gnu into a long name.
      const dir = long('d\xe9', 70)
      const file = `${dir}/${long('f\xe9', 60)}`
      mkdirSync(B(join(src, dir)), { recursive: true })
      writeFileSync(B(join(src, file)), 'x')
      writeFileSync(B(join(src, 'caf\xe9')), 'y')
      // ustar has no room for a link target over 100 bytes either.
      const linked = format === 'ustar' ? 'caf\xe9' : file
      linkSync(B(join(src, linked)), B(join(src, 'h\xe9')))
      symlinkSync(B('t\xe9'), B(join(src, 's\xe9')))
      const longTarget = `${long('\xe8', 120)}/x`
      if (format !== 'ustar') symlinkSync(B(longTarget), B(join(src, 'l\xe9')))
      execFileSync('tar', [`--format=${format}`, '-cf', join(context, 'a.tar'), '-C', src, '.'])
      const names = await layerNames(await add('a.tar'))
      const want: Record<string, string> = {
        [`dst/${dir}`]: 'd', [`dst/${file}`]: '-', 'dst/caf\xe9': '-', 'dst/h\xe9': `hdst/${linked}`, 'dst/s\xe9': 'lt\xe9',
        ...(format !== 'ustar' ? { 'dst/l\xe9': `l${longTarget}` } : {}),
      }
      expect(Object.fromEntries([...names].filter(([n]) => n.startsWith('dst/')))).toEqual(want)
      expect(storeTmp().filter((p) => p.startsWith('add-'))).toEqual([])
    })
  }

  it('the safety rules hold for names from PAX records and GNU long names', async () => {
    const bad: Array<[RawEntry[], string]> = [
      [[pax([['path', '../\xe9vil']]), { name: B('ok'), data: B('x') }], '../\udce9vil'],
      [[{ name: B('././@LongLink'), type: 'L', data: B('a/../../\xe9\0'), gnu: true }, { name: B('ok'), data: B('x'), gnu: true }], 'a/../../\udce9'],
      [[pax([['linkpath', '../../\xe9tc']]), { name: B('s\xe9'), type: '2' }], 's\udce9'],
    ]
    for (const [entries, entry] of bad) {
      writeFileSync(join(context, 'bad.tar'), rawTar(entries))
      const err = await add('bad.tar').catch((e: unknown) => e)
      expect(err).toMatchObject({ code: ErrorCodes.ADD_UNSAFE_ARCHIVE_ENTRY, details: { archive: 'bad.tar', entry } })
    }
  })
})

describe('ADD refuses malformed archive headers with ADD_ARCHIVE_INVALID', () => {
  const meg = 1 << 20
  const cases: Array<[string, () => Buffer, RegExp]> = [
    ['a PAX header over 1 MiB', () => rawTar([{ name: B('PaxHeaders/x'), type: 'x', data: paxRecord('comment', Buffer.alloc(meg, 0x61)) }, { name: B('f'), data: B('x') }]), /extended header of \d+ bytes/],
    ['a GNU long name over 1 MiB', () => rawTar([{ name: B('././@LongLink'), type: 'L', data: Buffer.alloc(meg + 1, 0x61), gnu: true }, { name: B('f'), data: B('x') }]), /extended header of \d+ bytes/],
    ['a PAX header with too many records', () => rawTar([{ name: B('PaxHeaders/x'), type: 'x', data: Buffer.concat(Array.from({ length: 10_001 }, () => B('6 a=b\n'))) }, { name: B('f'), data: B('x') }]), /more than 10000 records/],
    ['a malformed PAX record', () => rawTar([{ name: B('PaxHeaders/x'), type: 'x', data: B('99 path=x\n') }, { name: B('f'), data: B('x') }]), /malformed PAX record/],
    ['a PAX size that is no number', () => rawTar([pax([['size', '1e3']]), { name: B('f'), data: B('x') }]), /size is not a valid number/],
    ['a bad checksum after a good entry', () => {
      const t = rawTar([{ name: B('ok'), data: B('x') }, { name: B('next'), data: B('y') }])
      t[1024] ^= 1 // first byte of the second header
      return t
    }, /checksum/],
    ['a body cut short', () => rawTar([{ name: B('f'), data: Buffer.alloc(4096, 1) }], false).subarray(0, 2048), /ends inside an entry/],
  ]
  for (const [what, make, message] of cases) {
    it(what, async () => {
      writeFileSync(join(context, 'bad.tar'), make())
      await store.blobs.init()
      const err = await add('bad.tar').catch((e: unknown) => e)
      expect(err).toMatchObject({ code: ErrorCodes.ADD_ARCHIVE_INVALID, details: { path: 'bad.tar' } })
      expect((err as Error).message).toMatch(message)
      expect(storeTmp()).toEqual([])
    })
  }

  it('a truncated gzip or xz stream', async () => {
    // Incompressible, so half the compressed stream still starts with a whole tar header.
    const tarball = rawTar([{ name: B('f'), data: randomBytes(200_000) }])
    for (const tool of ['gzip', 'xz']) {
      const packed = execFileSync(tool, ['-c'], { input: tarball })
      writeFileSync(join(context, 'cut.tar.z'), packed.subarray(0, Math.floor(packed.length / 2)))
      const err = await add('cut.tar.z').catch((e: unknown) => e)
      expect(err).toMatchObject({ code: ErrorCodes.ADD_ARCHIVE_INVALID, details: { path: 'cut.tar.z' } })
    }
  })
})
