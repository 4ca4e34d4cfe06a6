import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createAtomicWriter, makeTempDir, sweepDeadTemps, tempPath, tempWriterPid, writeFileAtomic } from '../../src/store/atomic-write.js'
import { StoreDirs } from '../../src/store/layout.js'
import { Store } from '../../src/store/store.js'

const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'imagesmith-atomic-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** The pid of a process that has certainly exited (and was reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', ''])
  expect(r.status).toBe(0)
  return r.pid
}

describe('atomic writes', () => {
  it('every call gets its own temp name, so parallel writers of one file in one process never collide', async () => {
    const dir = tmp()
    const names = new Set(Array.from({ length: 1000 }, () => tempPath(dir, 'x.json')))
    expect(names.size).toBe(1000)
    for (const n of names) expect(tempWriterPid(n)).toBe(process.pid)

    // 64 writers of the same final name at once (what sibling branches did to one image lookup).
    const target = join(dir, 'x.json')
    const bodies = Array.from({ length: 64 }, (_, i) => JSON.stringify({ writer: i, pad: 'p'.repeat(4096 + i) }))
    await Promise.all(bodies.map((b, i) => writeFileAtomic(target, b, i % 3 === 0 ? {} : i % 3 === 1 ? { fsync: true } : { fsyncDir: true })))
    expect(bodies).toContain(readFileSync(target, 'utf8'))
    // Streaming writers too, committed onto one name.
    const writers = Array.from({ length: 16 }, () => createAtomicWriter(dir, 'blob', { fsyncDir: true }))
    expect(new Set(writers.map((w) => w.tmp)).size).toBe(16)
    await Promise.all(writers.map(async (w, i) => {
      w.stream.end(`stream ${i % 2}`)
      await w.commit(join(dir, 'streamed'))
    }))
    expect(['stream 0', 'stream 1']).toContain(readFileSync(join(dir, 'streamed'), 'utf8'))
    expect(readdirSync(dir).sort()).toEqual(['streamed', 'x.json'])
  })

  it('leaves no temp file behind when a write fails', async () => {
    const dir = tmp()
    // rename onto a non-empty directory fails after the temp was written
    mkdirSync(join(dir, 'taken', 'inside'), { recursive: true })
    await expect(writeFileAtomic(join(dir, 'taken'), 'data', { fsyncDir: true })).rejects.toMatchObject({ code: 'EISDIR' })
    expect(readdirSync(dir)).toEqual(['taken'])
    // a temp dir given that does not exist: the open fails, nothing is created anywhere
    await expect(writeFileAtomic(join(dir, 'f'), 'data', { tmpDir: join(dir, 'missing') })).rejects.toMatchObject({ code: 'ENOENT' })
    expect(readdirSync(dir)).toEqual(['taken'])
    // a streamed write whose commit fails, then is aborted
    const w = createAtomicWriter(dir, 'blob')
    w.stream.end(Buffer.alloc(1 << 20, 1))
    await expect(w.commit(join(dir, 'no', 'such', 'dir', 'blob'))).rejects.toMatchObject({ code: 'ENOENT' })
    await w.abort()
    expect(readdirSync(dir)).toEqual(['taken'])
    // a stream that failed mid-way is never renamed into place, whoever calls commit
    const broken = createAtomicWriter(dir, 'blob')
    broken.stream.write(Buffer.alloc(1 << 16, 2))
    broken.stream.destroy(new Error('disk went away'))
    await expect(broken.commit(join(dir, 'broken'))).rejects.toThrow('disk went away')
    await broken.abort()
    expect(readdirSync(dir)).toEqual(['taken'])
    // aborted before a single byte reached the file
    const early = createAtomicWriter(dir, 'blob')
    await early.abort()
    expect(readdirSync(dir)).toEqual(['taken'])
  })

  it('sweeps temps whose writer is dead, keeps those of live writers and names that are not temps', async () => {
    const dir = tmp()
    const dead = deadPid()
    const live = spawn('sleep', ['30'])
    try {
      const deadFile = `x.json.tmp-${dead}-0123abcd`
      const deadDir = `add.tmp-${dead}-Ab12Cd`
      const liveFile = `x.json.tmp-${live.pid}-0123abcd`
      const ownFile = `x.json.tmp-${process.pid}-0123abcd`
      const stepDir = `run-${dead}-xyz`
      for (const f of [deadFile, liveFile, ownFile, 'x.json', `backup-${dead}-notes`]) writeFileSync(join(dir, f), 'partial')
      for (const d of [deadDir, stepDir]) mkdirSync(join(dir, d, 'deep', 'er'), { recursive: true })
      expect(await sweepDeadTemps(dir)).toBe(2)
      expect(readdirSync(dir).sort()).toEqual([`backup-${dead}-notes`, liveFile, ownFile, stepDir, 'x.json'].sort())
      // Step dirs (`<kind>-<pid>-…`) only where the caller says they can be: a store's own folders.
      expect(await sweepDeadTemps(dir, { stepDirs: true })).toBe(2)
      expect(readdirSync(dir).sort()).toEqual([liveFile, ownFile, 'x.json'].sort())
    } finally {
      live.kill()
    }
  })

  it('a store sweeps dead writers\' temps from all its folders on init, once', async () => {
    const root = tmp()
    const dead = deadPid()
    for (const d of ['tmp', 'cache', 'imageLookups', 'snapshots', 'statCache'] as const) {
      const dir = join(root, StoreDirs[d])
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, `kept.json`), '{}')
      writeFileSync(join(dir, `abc.json.tmp-${dead}-ff00`), '{"half')
      mkdirSync(join(dir, `abc.tmp-${dead}-ff01`, 'sub'), { recursive: true })
    }
    const store = new Store(root)
    await store.init()
    for (const d of ['tmp', 'cache', 'imageLookups', 'snapshots', 'statCache'] as const) {
      expect(readdirSync(join(root, StoreDirs[d]))).toEqual(['kept.json'])
    }
    // ADD's temp dir carries the pid, so it is one of these too.
    const add = await makeTempDir(store.layout.dir('tmp'), 'add')
    expect(tempWriterPid(add.slice(add.lastIndexOf('/') + 1))).toBe(process.pid)
    expect(existsSync(add)).toBe(true)
  })
})
