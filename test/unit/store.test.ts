import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, promises as fsp, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import type { Digest } from '../../src/oci/media-types.js'
import { overlaySupported, setOverlaySupport } from '../../src/snapshot/overlay.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { Store, storeSlot } from '../../src/store/store.js'
import { clockAhead } from '../helpers/clock.js'

const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'imagesmith-store-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest
const blobFiles = (root: string) => readdirSync(join(root, 'blobs', 'sha256'))
const tmpFiles = (root: string) => readdirSync(join(root, 'tmp'))

describe('BlobStore', () => {
  it('stores by digest and reads back verified', async () => {
    const store = new BlobStore(tmp())
    const data = Buffer.from('hello blobs')
    const { digest, size } = await store.putStream(Readable.from([data]))
    expect(digest).toBe(sha(data))
    expect(size).toBe(data.length)
    expect(await store.readBytes(digest)).toEqual(data)
    const chunks: Buffer[] = []
    for await (const c of store.open(digest)) chunks.push(c as Buffer)
    expect(Buffer.concat(chunks)).toEqual(data)
  })

  it('refuses content that does not match the expected digest and leaves nothing behind', async () => {
    const root = tmp()
    const store = new BlobStore(root)
    const wrong = sha('something else')
    await expect(store.putStream(Readable.from([Buffer.from('data')]), wrong)).rejects.toMatchObject({ code: ErrorCodes.BLOB_CORRUPT })
    expect(blobFiles(root)).toEqual([])
    expect(tmpFiles(root)).toEqual([])
  })

  it('leaves nothing when the source stream fails mid-way', async () => {
    const root = tmp()
    const store = new BlobStore(root)
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1024, 1))
        this.destroy(new Error('source broke'))
      },
    })
    await expect(store.putStream(failing)).rejects.toThrow('source broke')
    expect(blobFiles(root)).toEqual([])
    expect(tmpFiles(root)).toEqual([])
  })

  it('detects a corrupted blob on read', async () => {
    const root = tmp()
    const store = new BlobStore(root)
    const { digest } = await store.putBytes('original content')
    writeFileSync(store.blobPath(digest), 'tampered content')
    await expect(store.readBytes(digest)).rejects.toMatchObject({ code: ErrorCodes.BLOB_CORRUPT })
    const read = async () => {
      for await (const _ of store.open(digest)) void _
    }
    await expect(read()).rejects.toMatchObject({ code: ErrorCodes.BLOB_CORRUPT })
  })

  it('a blob this process streamed in is read back as written within the minute; after it, a corrupted one is refused again', async () => {
    const root = tmp()
    const store = new BlobStore(root)
    const data = Buffer.from('streamed content')
    const { digest } = await store.putStream(Readable.from([data]))
    const read = async () => {
      const chunks: Buffer[] = []
      for await (const c of store.open(digest)) chunks.push(c as Buffer)
      return Buffer.concat(chunks)
    }
    expect(await read()).toEqual(data)
    writeFileSync(store.blobPath(digest), 'tampered content')
    // Trust in its own write ends a minute later (a long-lived process reads it verified again).
    await expect(clockAhead(61_000, read)).rejects.toMatchObject({ code: ErrorCodes.BLOB_CORRUPT })
    await expect(store.readBytes(digest)).rejects.toMatchObject({ code: ErrorCodes.BLOB_CORRUPT })
  })

  it('a writer killed mid-blob leaves no blob under any name, and its temp file is swept', async () => {
    const root = tmp()
    // A child process streams an endless blob into the store; we SIGKILL it mid-write.
    const script = `
      import { BlobStore } from ${JSON.stringify(new URL('../../src/store/blob-store.ts', import.meta.url).pathname)}
      import { Readable } from 'node:stream'
      const store = new BlobStore(${JSON.stringify(root)})
      let n = 0
      const src = new Readable({ read() { n++; if (n === 20) console.log('writing'); setTimeout(() => this.push(Buffer.alloc(65536, n & 255)), 1) } })
      await store.putStream(src)
    `
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('writing') && res())
      child.on('exit', (code) => rej(new Error(`writer exited early with ${code}`)))
    })
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    expect(blobFiles(root)).toEqual([])
    expect(tmpFiles(root).length).toBe(1)
    const store = new BlobStore(root)
    await store.init()
    expect(tmpFiles(root)).toEqual([])
    // The next write of real content works and names the right bytes.
    const { digest } = await store.putBytes('after the crash')
    expect(digest).toBe(sha('after the crash'))
  })

  it('concurrent writers of the same content in separate processes all succeed and agree', async () => {
    const root = tmp()
    const payload = join(root, 'payload')
    await fsp.writeFile(payload, Buffer.alloc(8 << 20, 7))
    const script = `
      import { BlobStore } from ${JSON.stringify(new URL('../../src/store/blob-store.ts', import.meta.url).pathname)}
      import { createReadStream } from 'node:fs'
      const store = new BlobStore(${JSON.stringify(root)})
      const r = await store.putStream(createReadStream(${JSON.stringify(payload)}))
      console.log(r.digest)
    `
    const run = () =>
      new Promise<string>((res, rej) => {
        const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
        let out = ''
        c.stdout.on('data', (d: Buffer) => (out += d))
        c.on('exit', (code) => (code === 0 ? res(out.trim()) : rej(new Error(`writer failed: ${code}`))))
      })
    const digests = await Promise.all([run(), run(), run(), run()])
    expect(new Set(digests).size).toBe(1)
    expect(digests[0]).toBe(sha(Buffer.alloc(8 << 20, 7)))
    expect(blobFiles(root)).toEqual([digests[0]!.slice(7)])
    expect(tmpFiles(root)).toEqual([])
  })
})

describe('Store: state per instance, never per process', () => {
  it('two stores in one process share no slot, probe, runtime or sweep', async () => {
    const a = new Store(tmp())
    const b = new Store(tmp())
    const slot = storeSlot('test counter', () => ({ n: 0 }))
    a.local(slot).n++
    expect(a.local(slot).n).toBe(1)
    expect(b.local(slot).n).toBe(0)

    setOverlaySupport(a, false)
    expect(await overlaySupported(a)).toBe(false)
    // b probes its own work dir (this host, as root, has overlay on its disk).
    expect(await overlaySupported(b)).toBe(process.getuid?.() === 0)
    setOverlaySupport(a, undefined)
    expect(await overlaySupported(a)).toBe(await overlaySupported(b))

    let runs = 0
    const count = async () => ++runs
    expect(await Promise.all([a.once('k', count), a.once('k', count), b.once('k', count)])).toEqual([1, 1, 2])
    // A failed run is forgotten, so the next call tries again.
    await expect(a.once('f', () => Promise.reject(new Error('no')))).rejects.toThrow('no')
    expect(await a.once('f', async () => 'yes')).toBe('yes')
  })

  it('names every folder through its layout', () => {
    const root = tmp()
    const store = new Store(root)
    expect(store.snapshotDir('sha256:ab')).toBe(join(root, 'snapshots', 'ab'))
    expect(store.cacheMountDir('a/b')).toBe(join(root, 'cache-mounts', 'a%2Fb'))
    expect(store.workDir()).toBe(join(root, 'work'))
    expect(store.layout.cacheEntry('sha256:cd')).toBe(join(root, 'cache', 'cd.json'))
    expect(store.layout.imageLookup('sha256:ef')).toBe(join(root, 'image-lookups', 'ef.json'))
    expect(store.blobs.blobPath(sha('x'))).toBe(join(root, 'blobs', 'sha256', sha('x').slice(7)))
    expect(store.blobs.tmpDir).toBe(store.layout.dir('tmp'))
  })
})
