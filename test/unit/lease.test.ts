/**
 * The lease protocol between builds and prune: what a build holds is on disk before it looks, a
 * hold made while a prune runs waits for the prune to end, and a prune skips what live leases hold
 * and sweeps leases of dead processes.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { pruneCache } from '../../src/store/gc.js'
import { liveLeases, parseLease } from '../../src/store/lease.js'
import { Store } from '../../src/store/store.js'
import { parseBytes, parseDuration } from '../../src/cli/format.js'

const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ism-lease-'))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('lease', () => {
  it('holds are written to the lease file before the lookup, and prune skips them', async () => {
    const store = new Store(tmp())
    await store.init()
    const kept = await store.blobs.putBytes('kept')
    const other = await store.blobs.putBytes('other')
    await store.lease.begin()
    expect(await store.blobs.has(kept.digest)).toBe(true)
    const [lease] = await liveLeases(store.layout)
    expect(lease!.blobs).toContain(kept.digest)
    expect(lease!.pid).toBe(process.pid)

    // A second store object on the same root stands for a prune in another process.
    const pruner = new Store(store.root)
    const result = await pruneCache(pruner, { all: true })
    expect(result.removed.map((r) => r.id)).toContain(other.digest)
    expect(existsSync(store.blobs.blobPath(kept.digest))).toBe(true)
    expect(existsSync(store.blobs.blobPath(other.digest))).toBe(false)

    await store.lease.release()
    expect(readdirSync(store.layout.dir('leases'))).toEqual([])
    await pruneCache(pruner, { all: true })
    expect(existsSync(store.blobs.blobPath(kept.digest))).toBe(false)
  })

  it('a hold made while a prune holds gc.lock waits until the lock is gone', async () => {
    const store = new Store(tmp())
    await store.init()
    await store.lease.begin()
    const blob = await store.blobs.putBytes('x')
    // A live process other than this one "runs a prune".
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' })
    writeFileSync(store.layout.gcLock(), String(holder.pid))
    let settled = false
    const p = store.blobs.has(blob.digest).then((v) => {
      settled = true
      return v
    })
    // The lookup is recorded in the lease before it waits.
    for (let i = 0; i < 100 && !readFileSync(readdirSync(store.layout.dir('leases')).map((n) => join(store.layout.dir('leases'), n))[0]!, 'utf8').includes(blob.digest); i++) await new Promise((r) => setTimeout(r, 10))
    expect(settled).toBe(false)
    rmSync(store.layout.gcLock())
    expect(await p).toBe(true)
    holder.kill()
    await store.lease.release()
  })

  it('the lease file grows by one line per write, holding only new items, and reads back whole', async () => {
    const store = new Store(tmp())
    await store.init()
    await store.lease.begin()
    const file = () => join(store.layout.dir('leases'), readdirSync(store.layout.dir('leases'))[0]!)
    const a = 'sha256:' + 'a'.repeat(64)
    const b = 'sha256:' + 'b'.repeat(64)
    const c = 'sha256:' + 'c'.repeat(64)
    await store.lease.hold({ blobs: [a] })
    await store.lease.hold({ blobs: [a], snapshots: [b] }) // a is held already: not written again
    await Promise.all([store.lease.hold({ cacheKeys: [c] }), store.lease.hold({ blobs: [c] })])
    const lines = readFileSync(file(), 'utf8').split('\n')
    expect(lines.pop()).toBe('')
    expect(JSON.parse(lines[0]!)).toMatchObject({ pid: process.pid, cacheKeys: [], blobs: [], snapshots: [] })
    expect(lines.slice(1).map((l) => JSON.parse(l))).toEqual(expect.arrayContaining([{ blobs: [a] }, { snapshots: [b] }]))
    expect(lines.join('\n').split(a).length - 1).toBe(1)
    const [lease] = await liveLeases(store.layout)
    expect(lease).toMatchObject({ pid: process.pid, blobs: [a, c], snapshots: [b], cacheKeys: [c] })
    await store.lease.release()
    expect(readdirSync(store.layout.dir('leases'))).toEqual([])
  })

  it('a reader leaves out a last line still being written, and reads a whole-record lease', () => {
    const header = JSON.stringify({ pid: 7, started: 's', cacheKeys: [], blobs: [], snapshots: [] })
    expect(parseLease(`${header}\n{"blobs":["x"]}\n{"blobs":["y"`)).toEqual({ pid: 7, started: 's', cacheKeys: [], blobs: ['x'], snapshots: [] })
    expect(parseLease(`${header}\n{"blobs":["x"]}`)?.blobs).toEqual([]) // no newline yet: not written
    expect(parseLease('')).toBeUndefined()
    expect(parseLease(header.slice(0, 10))).toBeUndefined()
    expect(parseLease(JSON.stringify({ pid: 8, started: '', cacheKeys: ['k'], blobs: [], snapshots: [] }))?.cacheKeys).toEqual(['k'])
  })

  it('leases of dead processes are swept; a dangling cache entry goes at any prune', async () => {
    const store = new Store(tmp())
    await store.init()
    mkdirSync(store.layout.dir('leases'), { recursive: true })
    const dead = spawnSync('true').pid!
    writeFileSync(join(store.layout.dir('leases'), `${dead}-abcdef.json`), JSON.stringify({ pid: dead, started: '', cacheKeys: [], blobs: [], snapshots: [] }))
    await store.cache.record('sha256:' + 'a'.repeat(64), { layer: { digest: 'sha256:' + 'b'.repeat(64) } })
    const r = await pruneCache(store, { keepStorage: 1e12 })
    expect(r.removed.map((x) => x.kind)).toEqual(['cache-entry'])
    expect(readdirSync(store.layout.dir('leases'))).toEqual([])
    expect(readdirSync(store.cache.dir).filter((n) => n.endsWith('.json'))).toEqual([])
  })
})

describe('prune flag values', () => {
  it('parses sizes and durations as docker does', () => {
    expect(parseBytes('10GB')).toBe(10e9)
    expect(parseBytes('512mb')).toBe(512e6)
    expect(parseBytes('1GiB')).toBe(1 << 30)
    expect(parseBytes('2048')).toBe(2048)
    expect(parseBytes('ten')).toBeUndefined()
    expect(parseDuration('24h')).toBe(86_400_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('7d')).toBe(7 * 86_400_000)
    expect(parseDuration('yesterday')).toBeUndefined()
  })
})
