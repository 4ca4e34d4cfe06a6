import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import { addExecutor } from '../../src/ops/add.js'
import { detectArchive } from '../../src/ops/archive.js'
import type { AddSpec } from '../../src/graph/nodes/add-node.js'
import type { Vertex } from '../../src/graph/node.js'
import type { LayerRef } from '../../src/oci/types.js'
import type { ExecContext, ImageState } from '../../src/solver/types.js'
import { Store } from '../../src/store/store.js'
import { listLayerEntries } from '../helpers/layer-listing.js'


let tmp: string
let context: string
let store: Store

function ctxFor(overrides: Partial<ExecContext> = {}): ExecContext {
  return {
    store, contextDir: context, epoch: 1_700_000_000, clampRunMtimes: false, created: '2023-11-14T22:13:20Z',
    platform: { os: 'linux', architecture: 'amd64' }, noCache: false, compression: 'gzip', secrets: {}, network: 'default',
    emit: () => {},
    ...overrides,
  }
}

const scratch = (): ImageState => ({
  config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
  layers: [], args: [], cmdSet: false,
})

async function add(spec: Partial<AddSpec> & { sources: string[]; dest: string }) {
  const v: Vertex<'add'> = {
    id: `sha256:${'0'.repeat(64)}`, kind: 'add', inputs: [], meta: { description: '' },
    spec: { fromInput: false, exclude: [], link: false, unpack: true, ...spec },
  }
  const r = await addExecutor.exec(v, [scratch()], ctxFor())
  const layer = r.state.layers.at(-1)!
  return { ...r, layer, list: await listLayer(layer) }
}

const listLayer = (layer: LayerRef) => listLayerEntries(store.blobs, layer)

interface RawEntry { name: string; type?: '0' | '1' | '2' | '5'; data?: string; linkname?: string; mode?: number; uid?: number; gid?: number; mtime?: number }

/** A ustar archive written byte by byte, so names like `../evil` survive (tools would refuse them). */
function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = []
  for (const e of entries) {
    const h = Buffer.alloc(512)
    const data = Buffer.from(e.data ?? '')
    const octal = (v: number, off: number, len: number) => h.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1')
    h.write(e.name, 0, 100, 'utf8')
    octal(e.mode ?? 0o644, 100, 8)
    octal(e.uid ?? 1000, 108, 8)
    octal(e.gid ?? 1000, 116, 8)
    octal((e.type ?? '0') === '0' ? data.length : 0, 124, 12)
    octal(e.mtime ?? 1_600_000_000, 136, 12)
    h.write(e.type ?? '0', 156, 1, 'latin1')
    if (e.linkname) h.write(e.linkname, 157, 100, 'utf8')
    h.write('ustar\0', 257, 6, 'latin1')
    h.write('00', 263, 2, 'latin1')
    h.fill(0x20, 148, 156)
    let sum = 0
    for (const b of h) sum += b
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1')
    blocks.push(h)
    if ((e.type ?? '0') === '0') {
      blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512))
    }
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

const compress = (tool: string, data: Buffer): Buffer => execFileSync(tool, ['-c'], { input: data })

const sample = (): Buffer => rawTar([
  { name: 'pkg/', type: '5', mode: 0o750 },
  { name: 'pkg/bin/tool', data: '#!/bin/sh\n', mode: 0o755 },
  { name: 'pkg/readme', data: 'hello', uid: 1234, gid: 4321, mtime: 1_234_567_890 },
  { name: 'pkg/link', type: '2', linkname: 'readme' },
  { name: 'pkg/hard', type: '1', linkname: 'pkg/readme' },
])

function writeAt(path: string, data: Buffer, at: number): void {
  const fd = openSync(path, 'r+')
  writeSync(fd, data, 0, data.length, at)
  closeSync(fd)
}

function tree(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true }).map(String).sort()
}

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'imagesmith-add-'))
  context = join(tmp, 'context')
  mkdirSync(context)
  store = new Store(join(tmp, 'store'))
})

afterEach(() => {
  rmSync(tmp, { recursive: true, force: true })
})

describe('ADD local archives', () => {
  for (const [kind, make, name] of [
    ['tar', (b: Buffer) => b, 'a.tar'],
    ['gzip', (b: Buffer) => compress('gzip', b), 'a.tgz'],
    ['bzip2', (b: Buffer) => compress('bzip2', b), 'a.tar.bz2'],
    ['xz', (b: Buffer) => compress('xz', b), 'no-extension'],
  ] as const) {
    it(`unpacks a ${kind} archive (detected by its bytes) keeping the archive's owners, modes and mtimes`, async () => {
      writeFileSync(join(context, name), make(sample()))
      expect(await detectArchive(join(context, name))).toBe(kind)
      const { list, state } = await add({ sources: [name], dest: '/opt' })
      expect([...list.keys()]).toEqual(['opt', 'opt/pkg', 'opt/pkg/bin', 'opt/pkg/bin/tool', 'opt/pkg/hard', 'opt/pkg/link', 'opt/pkg/readme'])
      expect(list.get('opt/pkg')).toMatchObject({ type: 'Directory', mode: 0o750, uid: 1000 })
      expect(list.get('opt/pkg/bin')).toMatchObject({ type: 'Directory', mode: 0o755, uid: 0, mtime: 1_700_000_000 })
      expect(list.get('opt/pkg/bin/tool')).toMatchObject({ type: 'File', mode: 0o755, data: '#!/bin/sh\n' })
      expect(list.get('opt/pkg/readme')).toMatchObject({ type: 'Link', linkpath: 'opt/pkg/hard', uid: 1234, gid: 4321 })
      expect(list.get('opt/pkg/hard')).toMatchObject({ type: 'File', data: 'hello', mtime: 1_234_567_890 })
      expect(list.get('opt/pkg/link')).toMatchObject({ type: 'SymbolicLink', linkpath: 'readme' })
      expect(state.config.history!.at(-1)!.created_by).toBe(`ADD ${name} /opt # buildkit`)
      expect(tree(join(store.root, 'tmp')).filter((p) => p.startsWith('add-'))).toEqual([])
    })
  }

  it('chown and chmod leave the archive’s own owners and modes; the dest dir gets the chown owner, 0755 (as buildah 1.28 and docker 20.10)', async () => {
    writeFileSync(join(context, 'a.tar'), sample())
    const { list } = await add({ sources: ['a.tar'], dest: '/o/', chown: '7:8', chmod: '640' })
    expect(list.get('o/pkg/bin/tool')).toMatchObject({ uid: 1000, gid: 1000, mode: 0o755 })
    expect(list.get('o/pkg')).toMatchObject({ uid: 1000, gid: 1000, mode: 0o750 })
    expect(list.get('o/pkg/readme')).toMatchObject({ uid: 1234, gid: 4321, mode: 0o644 })
    expect(list.get('o')).toMatchObject({ uid: 7, gid: 8, mode: 0o755 })
    // Directories the archive implies but does not list are 0755, with the chown owner (as buildah;
    // docker 20.10 makes them 0:0).
    writeFileSync(join(context, 'deep.tar'), rawTar([{ name: 'x/y/f', data: 'f', mode: 0o600 }]))
    const deep = await add({ sources: ['deep.tar'], dest: '/d/', chmod: '700', chown: '3:3' })
    expect(deep.list.get('d/x/y')).toMatchObject({ mode: 0o755, uid: 3, gid: 3 })
    expect(deep.list.get('d/x/y/f')).toMatchObject({ mode: 0o600, uid: 1000, gid: 1000 })
  })

  it('copies non-archives (and archives with unpack: false) like COPY', async () => {
    writeFileSync(join(context, 'plain.gz'), compress('gzip', Buffer.from('not a tar')))
    writeFileSync(join(context, 'a.tar'), sample())
    const { list } = await add({ sources: ['plain.gz', 'a.tar'], dest: '/d/', unpack: false })
    expect([...list.keys()]).toEqual(['d', 'd/a.tar', 'd/plain.gz'])
    const again = await add({ sources: ['plain.gz'], dest: '/d/' })
    expect([...again.list.keys()]).toEqual(['d', 'd/plain.gz'])
  })

  it('one glob matching several sources, dest without /: placed in turn (files replace dest; once an archive made it a directory, files go inside)', async () => {
    writeFileSync(join(context, 'a.txt'), 'a')
    writeFileSync(join(context, 'b.txt'), 'b')
    const files = await add({ sources: ['*.txt'], dest: '/t' })
    expect([...files.list.keys()]).toEqual(['t'])
    expect(files.list.get('t')).toMatchObject({ type: 'File', data: 'b' })
    writeFileSync(join(context, 'p0.tar'), sample())
    writeFileSync(join(context, 'p1.txt'), 'one')
    const mixed = await add({ sources: ['p*'], dest: '/m' })
    expect(mixed.list.get('m')).toMatchObject({ type: 'Directory', mode: 0o755 })
    expect(mixed.list.get('m/p1.txt')).toMatchObject({ type: 'File', data: 'one' })
    expect(mixed.list.get('m/pkg/readme')).toBeDefined()
    // The key knows which file lands where: a renamed match is a different layer.
    writeFileSync(join(context, 'p2.txt'), 'one')
    rmSync(join(context, 'p1.txt'))
    const renamed = await add({ sources: ['p*'], dest: '/m' })
    expect(renamed.cached).toBe(false)
    expect(renamed.list.get('m/p2.txt')).toMatchObject({ data: 'one' })
  })

  it('absolute entry names land under the destination', async () => {
    writeFileSync(join(context, 'abs.tar'), rawTar([{ name: '/etc/abs.conf', data: 'x' }, { name: './rel/./f', data: 'y' }]))
    const { list } = await add({ sources: ['abs.tar'], dest: '/dst/' })
    expect(list.get('dst/etc/abs.conf')!.data).toBe('x')
    expect(list.get('dst/rel/f')!.data).toBe('y')
    expect(list.has('etc/abs.conf')).toBe(false)
  })

  const unsafe: Array<[string, RawEntry[]]> = [
    ['../evil', [{ name: 'ok', data: 'ok' }, { name: '../evil', data: 'evil' }]],
    ['a/../../evil', [{ name: 'a/../../evil', data: 'evil' }]],
    ['symlink to outside (relative)', [{ name: 'esc', type: '2', linkname: '../../etc/shadow' }]],
    ['symlink to outside (absolute)', [{ name: 'esc', type: '2', linkname: '/etc/shadow' }]],
    ['hardlink to outside', [{ name: 'h', type: '1', linkname: '../../etc/passwd' }]],
    ['hardlink to an image file', [{ name: 'h', type: '1', linkname: 'etc/passwd' }]],
    ['write through an archive symlink', [{ name: 'd', type: '2', linkname: 'sub' }, { name: 'd/f', data: 'x' }]],
  ]
  for (const [what, entries] of unsafe) {
    it(`refuses an unsafe entry: ${what}`, async () => {
      writeFileSync(join(context, 'bad.tar'), rawTar(entries))
      writeFileSync(join(context, 'bad.tgz'), compress('gzip', rawTar(entries)))
      await store.blobs.init()
      const before = tree(tmp)
      for (const src of ['bad.tar', 'bad.tgz']) {
        const err = await add({ sources: [src], dest: '/app/' }).catch((e: unknown) => e)
        expect(err).toMatchObject({ name: 'UnsafeArchiveError', code: ErrorCodes.ADD_UNSAFE_ARCHIVE_ENTRY, details: { archive: src } })
        expect((err as { details: { entry: string } }).details.entry).toBe(entries.at(-1)!.name)
      }
      // nothing was written anywhere but the store's own (now empty again) temp dir
      expect(tree(tmp)).toEqual(before)
      for (const p of [join(tmp, 'evil'), join(tmp, '..', 'evil'), join(context, 'evil'), join(store.root, 'evil')]) expect(existsSync(p)).toBe(false)
      expect(tree(join(store.root, 'tmp'))).toEqual([])
    })
  }
})

describe('ADD URLs', () => {
  let server: Server
  let base: string
  const body = rawTar([{ name: 'inside.txt', data: 'tar body' }])
  const sha = `sha256:${createHash('sha256').update(body).digest('hex')}`
  let hits = 0
  /** Runs as a request is served: a test's way to act in the middle of a step that downloads. */
  let onRequest: (() => void) | undefined

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++
      onRequest?.()
      if (req.url === '/redirect') {
        res.writeHead(302, { location: '/files/app.tar' })
        res.end()
      } else if (req.url === '/files/app.tar' || req.url === '/files/a%20b.bin') {
        res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT', 'content-type': 'application/x-tar' })
        res.end(body)
      } else if (req.url === '/nodate/x') {
        res.writeHead(200)
        res.end('x')
      } else {
        res.writeHead(404)
        res.end('nope')
      }
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()))
  })

  it('downloads into a dest dir, named after the URL, mode 0600, Last-Modified as mtime, never unpacked', async () => {
    const { list } = await add({ sources: [`${base}/redirect`], dest: '/dl/' })
    expect([...list.keys()]).toEqual(['dl', 'dl/redirect'])
    const f = list.get('dl/redirect')!
    expect(f).toMatchObject({ type: 'File', mode: 0o600, uid: 0, gid: 0, mtime: Date.parse('Wed, 21 Oct 2015 07:28:00 GMT') / 1000 })
    expect(Buffer.from(f.data, 'utf8').length).toBe(body.length)
    const named = await add({ sources: [`${base}/files/a%20b.bin`], dest: '/dl/' })
    expect(named.list.has('dl/a b.bin')).toBe(true)
    const nodate = await add({ sources: [`${base}/nodate/x`], dest: '/dl/' })
    expect(nodate.list.get('dl/x')!.mtime).toBe(1_700_000_000)
  })

  it('a dest without a trailing slash names the file', async () => {
    const { list } = await add({ sources: [`${base}/files/app.tar`], dest: '/srv/archive.tar' })
    expect([...list.keys()]).toEqual(['srv', 'srv/archive.tar'])
  })

  it('verifies the checksum; with a checksum a cached step needs no download', async () => {
    const ok = await add({ sources: [`${base}/files/app.tar`], dest: '/c/', checksum: sha })
    expect(ok.cached).toBe(false)
    const h = hits
    const again = await add({ sources: [`${base}/files/app.tar`], dest: '/c/', checksum: sha })
    expect(again.cached).toBe(true)
    expect(hits).toBe(h)
    const err = await add({ sources: [`${base}/files/app.tar`], dest: '/c/', checksum: `sha256:${'0'.repeat(64)}` }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: ErrorCodes.ADD_CHECKSUM_MISMATCH, details: { url: `${base}/files/app.tar`, actual: sha } })
  })

  // With a checksum the one URL is downloaded only on a miss, inside the step's make, after the
  // key (and the hashes of the context files in it) was taken: a request handler that edits a
  // context file then edits it between its hash and its read, with no hook in the code under test.
  for (const [what, name, content, edit] of [
    ['a context file', 'big.txt', Buffer.alloc(3 << 20, 0x61), (p: string) => writeAt(p, Buffer.alloc(4096, 0x62), 2 << 20)],
    ['a local archive', 'a.tar', sample(), (p: string) => writeAt(p, Buffer.from('HELLO'), 1024)],
  ] as const) {
    it(`${what} edited in place (same size) after its hash fails with SOURCE_CHANGED and stores nothing; restored, it adds its own bytes`, async () => {
      const host = join(context, name)
      writeFileSync(host, content)
      const stored = () => ['blobs/sha256', 'cache', 'snapshots'].map((d) => tree(join(store.root, d)))
      const before = stored()
      const spec = { sources: [`${base}/files/app.tar`, name], dest: '/c/', checksum: sha }
      onRequest = () => {
        onRequest = undefined
        edit(host)
      }
      const err = await add(spec).catch((e: unknown) => e)
      expect(onRequest).toBeUndefined()
      expect(err).toMatchObject({ code: ErrorCodes.SOURCE_CHANGED, details: { source: host, expected: `sha256:${createHash('sha256').update(content).digest('hex')}` } })
      expect(stored()).toEqual(before)
      expect(tree(join(store.root, 'tmp')).filter((p) => p.startsWith('add-'))).toEqual([])

      writeFileSync(host, content)
      const rebuilt = await add(spec)
      expect(rebuilt.cached).toBe(false)
      if (name === 'a.tar') expect(rebuilt.list.get('c/pkg/hard')!.data).toBe('hello')
      else expect(rebuilt.list.get('c/big.txt')!.data === content.toString('utf8')).toBe(true)
      expect((await add(spec)).cached).toBe(true)
    })
  }

  it('fails with ADD_DOWNLOAD_FAILED naming url and status', async () => {
    const err = await add({ sources: [`${base}/missing`], dest: '/x/' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: ErrorCodes.ADD_DOWNLOAD_FAILED, details: { url: `${base}/missing`, status: 404 } })
    expect(tree(join(store.root, 'tmp'))).toEqual([])
  })
})
