import { execFileSync } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { closeSync, existsSync, lstatSync, openSync, writeSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import { devMajor, devMinor } from '../../src/layer/device-numbers.js'
import type { LayerEntry } from '../../src/layer/entry.js'
import { compressMember } from '../../src/layer/gzip-member.js'
import { fsPath, nameBytes, nameFromBytes } from '../../src/util/names.js'
import { tarChunks } from '../../src/layer/tar-writer.js'
import { sortEntries, writeLayer } from '../../src/layer/write-layer.js'
import { MediaType } from '../../src/oci/media-types.js'
import { BlobStore } from '../../src/store/blob-store.js'

const MTIME = 1_700_000_000
const LONG_DIR = `dir-${'d'.repeat(150)}` // path > 100 bytes
const LONG_FILE = `${LONG_DIR}/file-${'f'.repeat(150)}.txt` // path > 255 bytes
const MID_FILE = `sub/${'m'.repeat(110)}` // path just over 100 bytes

function bytes(seed: number, n: number): Buffer {
  const iv = Buffer.alloc(16)
  iv.writeUInt32BE(seed)
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), iv).update(Buffer.alloc(n))
}

function sha256(buf: Buffer): string {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`
}

let root: string
let src: string
const contents: Record<string, Buffer> = {}

function base(path: string, mode: number, extra: Partial<{ uid: number; gid: number; mtime: number }> = {}) {
  return { path, mode, uid: extra.uid ?? 0, gid: extra.gid ?? 0, mtime: extra.mtime ?? MTIME }
}

function fileEntry(path: string, mode: number, data: Buffer, extra: Parameters<typeof base>[2] = {}): LayerEntry {
  contents[path] = data
  const host = join(src, createHash('sha1').update(path).digest('hex'))
  writeFileSync(host, data)
  return { ...base(path, mode, extra), type: 'file', size: data.length, source: { path: host } }
}

function sampleEntries(): LayerEntry[] {
  return sortEntries([
    { ...base('etc', 0o755), type: 'dir' },
    fileEntry('etc/hello.txt', 0o644, Buffer.from('hello, layer\n'), { uid: 1000, gid: 1001 }),
    fileEntry('etc/empty', 0o600, Buffer.alloc(0)),
    fileEntry('etc/big.bin', 0o640, bytes(1, 5 << 20), { mtime: 1_234_567_890 }),
    { ...base('etc/hello-link', 0o777), type: 'symlink', linkname: 'hello.txt' },
    { ...base('etc/hello-hard', 0o644, { uid: 1000, gid: 1001 }), type: 'hardlink', linkname: 'etc/hello.txt' },
    { ...base('usr', 0o755), type: 'dir' },
    { ...base('usr/bin', 0o755), type: 'dir' },
    fileEntry('usr/bin/tool', 0o4755, Buffer.from('#!/bin/sh\necho tool\n')),
    { ...base('usr/bin/tool-link', 0o777), type: 'symlink', linkname: `../../${LONG_FILE}` }, // linkname > 100
    { ...base(LONG_DIR, 0o750), type: 'dir' },
    fileEntry(LONG_FILE, 0o644, Buffer.from('deep and long\n')),
    { ...base('sub', 0o755), type: 'dir' },
    fileEntry(MID_FILE, 0o644, Buffer.from('just over a hundred\n')),
    { ...base('gen', 0o755), type: 'dir' },
    { ...base('gen/data.json', 0o644), type: 'file', size: 13, source: { data: Buffer.from('{"a":"data"}\n') } },
    { ...base('gen/capable', 0o755, { uid: 2_100_000 }), type: 'file', size: 3, source: { data: Buffer.from('cap') }, xattrs: { 'user.note': Buffer.from('kept') } },
    { ...base('dev', 0o755), type: 'dir' },
    { ...base('dev/null', 0o666), type: 'char', devmajor: 1, devminor: 3 },
    { ...base('dev/sda', 0o660), type: 'block', devmajor: 8, devminor: 0 },
    { ...base('dev/pipe', 0o644), type: 'fifo' },
  ])
}

async function newStore(): Promise<BlobStore> {
  const store = new BlobStore(mkdtempSync(join(root, 'store-')))
  await store.init()
  return store
}

function gnuTar(args: string[], input?: Buffer): string {
  return execFileSync('tar', args, { input, encoding: 'utf8', maxBuffer: 64 << 20 })
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'imagesmith-layer-test-'))
  src = join(root, 'src')
  mkdirSync(src)
})

afterAll(() => {
  rmSync(root, { recursive: true, force: true })
})

describe('writeLayer', () => {
  it('is deterministic: same entries give the same digest and diffId', async () => {
    const a = await writeLayer(sampleEntries(), await newStore())
    const b = await writeLayer(sampleEntries(), await newStore())
    expect(a).toEqual(b)
    expect(a.mediaType).toBe(MediaType.OciLayerGzip)
    const plain = await writeLayer(sampleEntries(), await newStore(), { compression: 'none' })
    expect(plain.mediaType).toBe(MediaType.OciLayer)
    expect(plain.digest).toBe(plain.diffId)
    expect(plain.diffId).toBe(a.diffId)
    // A different level changes the blob but not the tar.
    const l1 = await writeLayer(sampleEntries(), await newStore(), { level: 1 })
    expect(l1.diffId).toBe(a.diffId)
    expect(l1.digest).not.toBe(a.digest)
  })

  it('writes a multi-member gzip that gzip -dc reads; diffId is sha256 of the tar', async () => {
    const store = await newStore()
    const ref = await writeLayer(sampleEntries(), store)
    const path = store.blobPath(ref.digest)
    const blob = readFileSync(path)
    expect(blob.length).toBe(ref.size)
    expect(sha256(blob)).toBe(ref.digest)
    const tar = execFileSync('gzip', ['-dc', path], { maxBuffer: 64 << 20 })
    expect(sha256(tar)).toBe(ref.diffId)
    expect(tar.length).toBeGreaterThan(5 << 20) // > 1 MiB: several members
    expect(gunzipSync(blob).equals(tar)).toBe(true)
    expect(tar.length % 512).toBe(0)
    expect(tar.subarray(tar.length - 1024).every((b) => b === 0)).toBe(true)
    expect(readdirSync(store.tmpDir)).toEqual([])
  })

  it('is read back by GNU tar: names, types, modes, owners, mtimes, links, devices, xattrs', async () => {
    const store = await newStore()
    const ref = await writeLayer(sampleEntries(), store, { compression: 'none' })
    const blobPath = store.blobPath(ref.digest)

    const listing = gnuTar(['--numeric-owner', '--full-time', '-tvf', blobPath]).trim().split('\n')
    const esc = (p: string) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    const line = (p: string) => listing.find((l) => new RegExp(`\\d\\d:\\d\\d:\\d\\d ${esc(p)}( -> | link to |$)`).test(l))
    expect(line('etc/')).toMatch(/^drwxr-xr-x 0\/0 /)
    // sortEntries made the first path of the link group ('-' < '.') the file.
    expect(line('etc/hello-hard')).toMatch(/^-rw-r--r-- 1000\/1001 +13 2023-11-14 22:13:20 /)
    expect(line('etc/hello.txt')).toMatch(/^hrw-r--r-- 1000\/1001 .* etc\/hello.txt link to etc\/hello-hard$/)
    expect(line('etc/hello-link')).toMatch(/^lrwxrwxrwx 0\/0 .* etc\/hello-link -> hello.txt$/)
    expect(line('usr/bin/tool')).toMatch(/^-rwsr-xr-x /)
    expect(line('gen/capable')).toMatch(/^-rwxr-xr-x 2100000\/0 /)
    expect(line('dev/null')).toMatch(/^crw-rw-rw- 0\/0 +1,3 /)
    expect(line('dev/sda')).toMatch(/^brw-rw---- 0\/0 +8,0 /)
    expect(line('dev/pipe')).toMatch(/^prw-r--r-- /)
    expect(line(`${LONG_DIR}/`)).toBeDefined()
    expect(line(LONG_FILE)).toBeDefined()
    expect(line(MID_FILE)).toBeDefined()
    expect(listing.find((l) => l.includes(` usr/bin/tool-link -> ../../${LONG_FILE}`))).toBeDefined()
    expect(listing.some((l) => l.includes('PaxHeaders'))).toBe(false) // PAX headers are consumed, not listed
    expect(listing.length).toBe(sampleEntries().length)

    const xattrs = gnuTar(['--xattrs', '--xattrs-include=*', '-tvvf', blobPath])
    expect(xattrs).toMatch(/gen\/capable\n\s+x: +4 user\.note/)

    // Extract the regular files, dirs and links (devices need root) and compare with the sources.
    const out = mkdtempSync(join(root, 'x-'))
    gnuTar(['-xpf', blobPath, '-C', out, '--no-same-owner', '--exclude=dev/*'])
    for (const [p, data] of Object.entries(contents)) {
      expect(readFileSync(join(out, p)).equals(data), p).toBe(true)
    }
    expect(statSync(join(out, 'etc/big.bin')).mtime.getTime()).toBe(1_234_567_890_000)
    expect(statSync(join(out, 'etc/hello.txt')).mtime.getTime()).toBe(MTIME * 1000)
    expect(statSync(join(out, 'etc')).mtime.getTime()).toBe(MTIME * 1000)
    expect(statSync(join(out, 'etc/big.bin')).mode & 0o7777).toBe(0o640)
    expect(statSync(join(out, 'etc/empty')).size).toBe(0)
    expect(statSync(join(out, LONG_DIR)).mode & 0o7777).toBe(0o750)
    expect(readlinkSync(join(out, 'etc/hello-link'))).toBe('hello.txt')
    expect(lstatSync(join(out, 'etc/hello-hard')).ino).toBe(lstatSync(join(out, 'etc/hello.txt')).ino)
    expect(readFileSync(join(out, 'gen/data.json'), 'utf8')).toBe('{"a":"data"}\n')
  })

  it('writes no host- or time-dependent PAX records', () => {
    const tar = Buffer.concat([...tarChunks(sampleEntries())])
    const text = tar.toString('latin1')
    expect(text).toContain(`path=${LONG_FILE}\n`)
    expect(text).toContain(' uid=2100000\n')
    expect(text).toContain(' SCHILY.xattr.user.note=kept\n')
    expect(text).not.toMatch(/ (atime|ctime|mtime|uname|gname)=/)
    // GNU tar names extended headers `PaxHeaders.<pid>/…`; ours use Go's fixed `PaxHeaders.0`.
    // (Matching the bare pid anywhere would also hit file bytes and octal fields that happen to hold its digits.)
    expect(new Set(text.match(/PaxHeaders\.\d+/g))).toEqual(new Set(['PaxHeaders.0']))
    for (const name of headerNames(tar)) expect(name).not.toContain(String(process.pid))
    // Every chunk but the last is exactly 1 MiB.
    const sizes = [...tarChunks(sampleEntries())].map((c) => c.length)
    expect(sizes.slice(0, -1).every((s) => s === 1 << 20)).toBe(true)
  })

  it('writes an empty layer as two zero blocks', async () => {
    const store = await newStore()
    const ref = await writeLayer([], store, { compression: 'none' })
    expect(ref.size).toBe(1024)
    expect(ref.diffId).toBe(sha256(Buffer.alloc(1024)))
    const gz = await writeLayer([], store)
    expect(gunzipSync(readFileSync(store.blobPath(gz.digest))).equals(Buffer.alloc(1024))).toBe(true)
  })

  it('accepts async iterables of entries', async () => {
    async function* gen() {
      for (const e of sampleEntries()) yield e
    }
    const a = await writeLayer(gen(), await newStore())
    const b = await writeLayer(sampleEntries(), await newStore())
    expect(a).toEqual(b)
  })

  it('throws a typed error and leaves nothing behind when a file size differs from the entry', async () => {
    const store = await newStore()
    const host = join(src, 'changing')
    writeFileSync(host, 'twelve bytes')
    const grown: LayerEntry = { ...base('changing', 0o644), type: 'file', size: 5, source: { path: host } }
    const err = await writeLayer([grown], store).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ImagesmithError)
    expect((err as ImagesmithError).code).toBe(ErrorCodes.SOURCE_CHANGED)
    expect((err as ImagesmithError).details).toMatchObject({ path: 'changing', expected: 5, actual: 12 })
    const shrunk: LayerEntry = { ...grown, size: 5000 }
    await expect(writeLayer([shrunk], store)).rejects.toMatchObject({ code: ErrorCodes.SOURCE_CHANGED })
    const badData: LayerEntry = { ...base('x', 0o644), type: 'file', size: 4, source: { data: Buffer.from('abc') } }
    await expect(writeLayer([badData], store)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    expect(readdirSync(store.tmpDir)).toEqual([])
    expect(readdirSync(join(store.root, 'blobs', 'sha256'))).toEqual([])
  })

  it('a file edited in place (same size) while it is read fails with SOURCE_CHANGED against the expected hash; nothing is committed', async () => {
    const store = await newStore()
    const data = bytes(7, 3 << 20)
    const e = fileEntry('edited.bin', 0o644, data)
    const host = (e as { source: { path: string } }).source.path
    const want = new Map([[host, createHash('sha256').update(data).digest('hex')]])
    // The tee sees each read as it happens: after the first piece of the file, overwrite bytes the
    // writer has not read yet (same inode, same size, so the size checks cannot see it).
    let edited = false
    const tee = {
      begin: () => {},
      data: () => {
        if (edited) return
        edited = true
        const fd = openSync(host, 'r+')
        writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 2 << 20)
        closeSync(fd)
      },
      end: () => {},
    }
    const err = await writeLayer([e], store, { expect: want, tee }).catch((x: unknown) => x)
    expect(edited).toBe(true)
    expect(err).toBeInstanceOf(ImagesmithError)
    expect((err as ImagesmithError).code).toBe(ErrorCodes.SOURCE_CHANGED)
    expect((err as ImagesmithError).details).toMatchObject({ path: 'edited.bin', source: host, expected: `sha256:${want.get(host)}` })
    expect(readdirSync(store.tmpDir)).toEqual([])
    expect(readdirSync(join(store.root, 'blobs', 'sha256'))).toEqual([])

    // An empty file is held to its expected hash too (it grew after it was hashed, then shrank back).
    const empty = fileEntry('empty', 0o644, Buffer.alloc(0))
    const emptyHost = (empty as { source: { path: string } }).source.path
    await expect(writeLayer([empty], store, { expect: new Map([[emptyHost, createHash('sha256').update('x').digest('hex')]]) }))
      .rejects.toMatchObject({ code: ErrorCodes.SOURCE_CHANGED, details: { source: emptyHost } })
    // Unchanged files pass, and files the map does not name are not checked.
    writeFileSync(host, data)
    const ok = await writeLayer([e, empty], store, { expect: new Map([...want, [emptyHost, createHash('sha256').digest('hex')]]) })
    expect(ok).toEqual(await writeLayer([e, empty], await newStore()))
  })

  it('aborts: rejects with ABORTED, removes the temp file, commits no blob', async () => {
    const store = await newStore()
    const ac = new AbortController()
    const entries = sampleEntries()
    async function* slow() {
      for (const [i, e] of entries.entries()) {
        if (i === 5) ac.abort(new Error('user cancelled'))
        yield e
      }
    }
    await expect(writeLayer(slow(), store, { signal: ac.signal })).rejects.toMatchObject({ code: ErrorCodes.ABORTED })
    expect(readdirSync(store.tmpDir)).toEqual([])
    expect(readdirSync(join(store.root, 'blobs', 'sha256'))).toEqual([])
    // Already aborted: nothing is even opened.
    await expect(writeLayer(entries, store, { signal: ac.signal })).rejects.toMatchObject({ code: ErrorCodes.ABORTED })
    expect(readdirSync(store.tmpDir)).toEqual([])
  })

  it('aborts while compressing a large sync entry list', async () => {
    const store = await newStore()
    const ac = new AbortController()
    const big: LayerEntry = { ...base('big', 0o644), type: 'file', size: 24 << 20, source: { data: bytes(9, 24 << 20) } }
    const p = writeLayer([big], store, { signal: ac.signal })
    setImmediate(() => ac.abort())
    await expect(p).rejects.toMatchObject({ code: ErrorCodes.ABORTED })
    expect(readdirSync(store.tmpDir)).toEqual([])
    expect(existsSync(join(store.root, 'blobs', 'sha256')) && readdirSync(join(store.root, 'blobs', 'sha256'))).toEqual([])
  })

  it('rejects bad options and entries eagerly', async () => {
    const store = await newStore()
    await expect(writeLayer([], store, { level: 0 })).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    await expect(writeLayer([], store, { compression: 'zstd' as 'gzip' })).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    await expect(writeLayer([{ ...base('/abs', 0o755), type: 'dir' }], store)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    expect(readdirSync(store.tmpDir)).toEqual([])
  })
})

describe('sortEntries', () => {
  it('puts parents first and compares paths byte-wise by component', () => {
    const paths = ['b', 'a-b', 'a/b/c', 'a.b', 'a', 'a/b', 'a/B', 'é', 'z', 'a/b-c']
    const sorted = sortEntries(paths.map((p) => ({ ...base(p, 0o755), type: 'dir' as const }))).map((e) => e.path)
    expect(sorted).toEqual(['a', 'a/B', 'a/b', 'a/b/c', 'a/b-c', 'a-b', 'a.b', 'b', 'z', 'é'])
  })

  it('moves the content of a hard-link group to its first path', () => {
    const file: LayerEntry = { ...base('x/z', 0o644), type: 'file', size: 1, source: { data: Buffer.from('1') } }
    const early: LayerEntry = { ...base('x/a', 0o644), type: 'hardlink', linkname: 'x/z' }
    const late: LayerEntry = { ...base('y', 0o644), type: 'hardlink', linkname: 'x/z' }
    const sorted = sortEntries([late, file, early])
    expect(sorted.map((e) => [e.path, e.type, 'linkname' in e ? e.linkname : undefined])).toEqual([
      ['x/a', 'file', undefined],
      ['x/z', 'hardlink', 'x/a'],
      ['y', 'hardlink', 'x/a'],
    ])
    expect(sortEntries([file, late]).map((e) => e.type)).toEqual(['file', 'hardlink']) // already in order: untouched
  })
})

describe('compressMember', () => {
  const input = Buffer.concat([bytes(3, 1 << 20), Buffer.from('text '.repeat(300_000))]) // ~2.4 MiB

  it('writes a fixed member header: no mtime, OS = Unix, no name', async () => {
    const m = await compressMember(input, { level: 9 }, undefined)
    expect([...m.subarray(0, 4)]).toEqual([0x1f, 0x8b, 8, 0])
    expect(m.readUInt32LE(4)).toBe(0)
    expect(m[9]).toBe(3)
    expect(gunzipSync(m).equals(input)).toBe(true)
  })

  it('gives one valid member for empty input', async () => {
    expect(gunzipSync(await compressMember(Buffer.alloc(0), { level: 6 }, undefined)).length).toBe(0)
  })
})

describe('names as bytes (names.ts)', () => {
  const samples: Buffer[] = [
    Buffer.from('plain/ascii.txt'),
    Buffer.from('café/naïve', 'utf8'),
    Buffer.from('skull-💀', 'utf8'), // U+1F480 = D83D DC80 in UTF-16: a low surrogate that is no escape
    Buffer.from([0x62, 0x79, 0x74, 0x65, 0x73, 0x2d, 0xff, 0xfe]),
    Buffer.from([0xed, 0xb0, 0x80]), // a UTF-16 surrogate encoded in UTF-8: not valid UTF-8
    Buffer.from([0xc0, 0xaf]), // overlong '/'
    Buffer.from([0x61, 0xe2, 0x82]), // truncated sequence at the end
    Buffer.from([0x61, 0xff, 0xc3, 0xa9, 0xf0, 0x9f, 0x92, 0x80, 0x80]),
  ]

  it('round-trips every byte string and keeps valid UTF-8 as its plain string', () => {
    const names = samples.map(nameFromBytes)
    expect(new Set(names).size).toBe(samples.length)
    samples.forEach((b, i) => {
      expect(nameBytes(names[i]!)).toEqual(b)
      const valid = (() => { try { new TextDecoder('utf-8', { fatal: true }).decode(b); return true } catch { return false } })()
      if (valid) expect(names[i]).toBe(b.toString('utf8'))
      expect(typeof fsPath(names[i]!)).toBe(valid ? 'string' : 'object')
    })
  })

  it('sorts by bytes: é (C3 A9) before the raw byte FF', () => {
    const e = (p: string): LayerEntry => ({ ...base(p, 0o644), type: 'fifo' })
    const rawName = nameFromBytes(Buffer.from([0x61, 0xff]))
    expect(sortEntries([e(rawName), e('aé'), e('a')]).map((x) => nameBytes(x.path).toString('hex'))).toEqual(['61', '61c3a9', '61ff'])
  })

  it('GNU tar reads the exact bytes back: ustar names, PAX path/linkpath records, hard links to symlinks', async () => {
    const r = (s: string, ...b: number[]) => nameFromBytes(Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from(b)]))
    const longDir = r(`long-${'x'.repeat(100)}-`, 0xff)
    const entries = sortEntries<LayerEntry>([
      { ...base('n', 0o755), type: 'dir' },
      { ...base(r('n/bytes-', 0xff, 0xfe), 0o644), type: 'file', size: 2, source: { data: Buffer.from('b\n') } },
      { ...base(r('n/ln-', 0xff), 0o777), type: 'symlink', linkname: r('bytes-', 0xff, 0xfe) },
      { ...base(`n/${longDir}`, 0o755), type: 'dir' },
      { ...base(r(`n/${longDir}/f`, 0xfe), 0o600), type: 'file', size: 0, source: { data: Buffer.alloc(0) } },
      { ...base('n/sym', 0o777), type: 'symlink', linkname: 'a' },
      { ...base('n/sym-hard', 0o777), type: 'hardlink', linkname: 'n/sym', targetType: 'symlink' },
    ])
    const tar = Buffer.concat([...tarChunks(entries)])
    const listing = execFileSync('tar', ['--numeric-owner', '--quoting-style=escape', '-tvf', '-'], { input: tar }).toString('latin1')
      .split('\n').filter(Boolean).map((l) => l.replace(/^(\S+) (\S+)\s+(\S+) \S+ \S+ /, '$1 $2 $3 '))
    expect(listing).toEqual([
      'drwxr-xr-x 0/0 0 n/',
      '-rw-r--r-- 0/0 2 n/bytes-\\377\\376',
      'lrwxrwxrwx 0/0 0 n/ln-\\377 -> bytes-\\377\\376',
      `drwxr-xr-x 0/0 0 n/long-${'x'.repeat(100)}-\\377/`,
      `-rw------- 0/0 0 n/long-${'x'.repeat(100)}-\\377/f\\376`,
      'lrwxrwxrwx 0/0 0 n/sym -> a',
      'hrwxrwxrwx 0/0 0 n/sym-hard link to n/sym',
    ])
    const out = mkdtempSync(join(root, 'x-'))
    execFileSync('tar', ['-xf', '-', '-C', out], { input: tar })
    const names = readdirSync(join(out, 'n'), { encoding: 'buffer' }).map((b) => b.toString('hex')).sort()
    expect(names).toEqual([
      Buffer.from([...Buffer.from('bytes-'), 0xff, 0xfe]),
      Buffer.from([...Buffer.from('ln-'), 0xff]),
      Buffer.from([...Buffer.from(`long-${'x'.repeat(100)}-`), 0xff]),
      Buffer.from('sym'),
      Buffer.from('sym-hard'),
    ].map((b) => b.toString('hex')).sort())
    expect(lstatSync(join(out, 'n/sym')).nlink).toBe(2)
    expect(readlinkSync(Buffer.from([...Buffer.from(`${out}/n/ln-`), 0xff]), { encoding: 'buffer' })).toEqual(Buffer.from([...Buffer.from('bytes-'), 0xff, 0xfe]))
  })
})

describe('device numbers', () => {
  // glibc's gnu_dev_makedev on 64 bits.
  const makedev = (maj: bigint, min: bigint) => (min & 0xffn) | ((maj & 0xfffn) << 8n) | ((min & ~0xffn) << 12n) | ((maj & ~0xfffn) << 32n)

  it('split a 64-bit dev_t as glibc does, minor > 255 included', () => {
    for (const [maj, min] of [[1n, 3n], [511n, 70000n], [4095n, 1048575n], [0xfffffn, 0xffffffffn]] as const) {
      const dev = makedev(maj, min)
      expect([devMajor(dev), devMinor(dev)]).toEqual([Number(maj), Number(min)])
      if (dev < 2n ** 53n) expect([devMajor(Number(dev)), devMinor(Number(dev))]).toEqual([Number(maj), Number(min)])
    }
  })

  it('of a real device node (lstat rdev) match what stat(1) reports', () => {
    const p = join(root, 'dev-511-70000')
    execFileSync('mknod', [p, 'c', '511', '70000'])
    const st = lstatSync(p)
    expect([devMajor(st.rdev), devMinor(st.rdev)]).toEqual([511, 70000])
    expect(execFileSync('stat', ['-c', '%Hr,%Lr', p]).toString().trim()).toBe('511,70000')
  })

  it('past 7 octal digits are written in GNU base-256, as Go writes them; GNU tar reads them', () => {
    const entries: LayerEntry[] = [
      { ...base('x', 0o644), type: 'char', devmajor: 511, devminor: 70000 },
      { ...base('huge', 0o644), type: 'block', devmajor: 3_000_000, devminor: 2_500_000 },
      { ...base('x-hard', 0o644), type: 'hardlink', linkname: 'x', targetType: 'char', devmajor: 511, devminor: 70000 },
    ]
    const tar = Buffer.concat([...tarChunks(entries)])
    expect(tar[512 + 329]).toBe(0x80) // huge: devmajor field starts with the base-256 marker
    const listing = execFileSync('tar', ['--numeric-owner', '-tvf', '-'], { input: tar }).toString().split('\n').filter(Boolean)
    expect(listing[0]).toMatch(/^crw-r--r-- 0\/0 +511,70000 /)
    expect(listing[1]).toMatch(/^brw-r--r-- 0\/0 +3000000,2500000 /)
    expect(listing[2]).toMatch(/^hrw-r--r-- 0\/0 .* x-hard link to x$/)
    // the link's header keeps the linked type's bits, as Go's archive/tar writes it
    expect(parseInt(tar.subarray(1024 + 100, 1024 + 107).toString(), 8)).toBe(0o20644)
  })
})

/** The name field of every tar header block in `tar` (entries in order, data blocks skipped). */
function headerNames(tar: Buffer): string[] {
  const names: string[] = []
  for (let off = 0; off + 512 <= tar.length; ) {
    const block = tar.subarray(off, off + 512)
    if (block.every((b) => b === 0)) break
    names.push(block.subarray(0, 100).toString('latin1').replace(/\0.*$/s, ''))
    const size = parseInt(block.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8)
    off += 512 + Math.ceil(size / 512) * 512
  }
  return names
}
