/** The COPY stat cache: it only ever saves re-reading a file; bytes always decide the hash. */
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { racyWindowMs, StatCache } from '../../src/context/content-key.js'
import { statStamp } from '../../src/util/stat-stamp.js'
import { clockAhead, clockAt } from '../helpers/clock.js'

let tmp: string
let cacheDir: string
const buf = Buffer.allocUnsafe(1 << 20)
const sha = (s: string) => createHash('sha256').update(s).digest('hex')

/** A context file (written now: the tests move the clock past the 2 s racy window when they need to). */
function ctxFile(name: string, text: string): string {
  const p = join(tmp, 'ctx', name)
  writeFileSync(p, text)
  return p
}

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ism-statcache-'))
  mkdirSync(join(tmp, 'ctx'))
  cacheDir = join(tmp, 'cache')
})
afterEach(() => rmSync(tmp, { recursive: true, force: true }))

describe('StatCache', () => {
  it('remembers hashes across runs and hashes a file again when its bytes change with the same size and mtime', async () => {
    const a = ctxFile('a.txt', 'aaaa')
    const b = ctxFile('b.txt', 'bbbb')
    await clockAhead(10_000, async () => {
      const first = await StatCache.open(cacheDir, 'ctx')
      expect(first.hash(a, buf)).toBe(sha('aaaa'))
      expect(first.hash(b, buf)).toBe(sha('bbbb'))
      expect(first.hits).toBe(0)
      await first.save()
    })
    expect(readdirSync(cacheDir)).toHaveLength(1)

    // Same size, same mtime, new bytes (moby/buildkit#4950): the ctime moves, so it is a miss.
    const st = statSync(b)
    writeFileSync(b, 'BBBB')
    utimesSync(b, st.atime, st.mtime)
    await clockAhead(10_000, async () => {
      const second = await StatCache.open(cacheDir, 'ctx')
      expect(second.hash(a, buf)).toBe(sha('aaaa'))
      expect(second.hash(b, buf)).toBe(sha('BBBB'))
      expect(second.hits).toBe(1)
      await second.save()
    })
    const third = await clockAhead(10_000, () => StatCache.open(cacheDir, 'ctx'))
    await clockAhead(10_000, () => {
      expect(third.hash(b, buf)).toBe(sha('BBBB'))
      expect(third.hash(a, buf)).toBe(sha('aaaa'))
    })
    expect(third.hits).toBe(2)
  })

  it('never remembers a file written within the racy window', async () => {
    const a = ctxFile('a.txt', 'aaaa')
    const st = statSync(a)
    // 10 ms after the write: within any filesystem's tick.
    await clockAt(Math.max(st.ctimeMs, st.mtimeMs) + 10, async () => {
      const first = await StatCache.open(cacheDir, 'ctx')
      expect(first.hash(a, buf)).toBe(sha('aaaa'))
      expect(first.settled).toBe(false)
      await first.save()
    })
    const second = await StatCache.open(cacheDir, 'ctx')
    expect(second.hash(a, buf)).toBe(sha('aaaa'))
    expect(second.hits).toBe(0)
  })

  it('on a filesystem with sub-second stamps, remembers a file changed a moment (over 50 ms) before', async () => {
    const a = ctxFile('a.txt', 'aaaa')
    const st = statSync(a)
    expect(racyWindowMs(st)).toBe(st.mtimeMs % 1000 !== 0 || st.ctimeMs % 1000 !== 0 ? 50 : 2000)
    await clockAt(Math.max(st.ctimeMs, st.mtimeMs) + racyWindowMs(st) + 1, async () => {
      const first = await StatCache.open(cacheDir, 'ctx')
      first.hash(a, buf)
      expect(first.settled).toBe(true)
      await first.save()
    })
    const second = await StatCache.open(cacheDir, 'ctx')
    expect(second.hash(a, buf, statStamp(statSync(a)))).toBe(sha('aaaa'))
    expect(second.hits).toBe(1)
  })

  it('whole-second stamps (a coarse filesystem) keep a 2 s window', () => {
    expect(racyWindowMs({ mtimeMs: 1_700_000_000_000, ctimeMs: 1_700_000_001_000 })).toBe(2000)
    expect(racyWindowMs({ mtimeMs: 1_700_000_000_000, ctimeMs: 1_700_000_001_123.5 })).toBe(50)
    expect(racyWindowMs({ mtimeMs: 1_700_000_000_250, ctimeMs: 1_700_000_001_000 })).toBe(50)
  })

  it('ignores records it cannot read (another format) and hashes those files again', async () => {
    const a = ctxFile('a.txt', 'aaaa')
    await clockAhead(10_000, async () => {
      const first = await StatCache.open(cacheDir, 'ctx')
      first.hash(a, buf)
      await first.save()
    })
    const cacheFile = join(cacheDir, readdirSync(cacheDir)[0]!)
    const st = statSync(a, { bigint: true })
    // A record shaped as an array, with a wrong hash: trusting it would give the wrong content.
    writeFileSync(cacheFile, JSON.stringify({ [a]: [String(st.ino), String(st.size), String(st.mtimeNs), String(st.ctimeNs), sha('zzzz')] }))
    await clockAhead(10_000, async () => {
      const second = await StatCache.open(cacheDir, 'ctx')
      expect(second.hash(a, buf)).toBe(sha('aaaa'))
      expect(second.hits).toBe(0)
      await second.save()
    })
    expect(JSON.parse(readFileSync(cacheFile, 'utf8'))[a]).toMatch(/:[0-9a-f]{64}$/)
  })

  it('trusts the context walk’s stamp when the record matches it, and stats the file afresh when it does not', async () => {
    const a = ctxFile('a.txt', 'aaaa')
    const walked = statStamp(statSync(a))
    await clockAhead(10_000, async () => {
      const first = await StatCache.open(cacheDir, 'ctx')
      expect(first.hash(a, buf, walked)).toBe(sha('aaaa'))
      await first.save()
    })
    expect(Object.values(JSON.parse(readFileSync(join(cacheDir, readdirSync(cacheDir)[0]!), 'utf8')))).toEqual([walked + sha('aaaa')])
    await clockAhead(10_000, async () => {
      const second = await StatCache.open(cacheDir, 'ctx')
      expect(second.hash(a, buf, walked)).toBe(sha('aaaa'))
      expect(second.hits).toBe(1)
    })
    // Changed after the walk the record came from: the stale stamp misses, the file is stat'ed and read again.
    const st = statSync(a)
    writeFileSync(a, 'AAAA')
    utimesSync(a, st.atime, st.mtime)
    await clockAhead(10_000, async () => {
      const third = await StatCache.open(cacheDir, 'ctx')
      expect(third.hash(a, buf, statStamp(statSync(a)))).toBe(sha('AAAA'))
      expect(third.hits).toBe(0)
    })
  })
})
