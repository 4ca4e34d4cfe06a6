import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { probeStarted, probeTree, startTreeProbe, takeTreeProbe } from '../../src/context/tree-probe.js'
import { probeEarly } from '../../src/cli/early-probe.js'
import { clockAhead } from '../helpers/clock.js'

let dir: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imagesmith-probe-'))
  mkdirSync(join(dir, 'sub'))
  writeFileSync(join(dir, 'a.txt'), 'aaaa')
  writeFileSync(join(dir, 'sub', 'b.txt'), 'bbbb')
  symlinkSync('a.txt', join(dir, 'link'))
})

afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

const digest = async (): Promise<string> => {
  const p = await probeTree(dir)
  expect(p).toBeDefined()
  return p!.digest
}

describe('context tree probe', () => {
  it('gives the same digest for an unchanged tree and another after every kind of change', async () => {
    const seen = new Set([await digest()])
    expect(await digest()).toBe([...seen][0])
    const changes: [string, () => void][] = [
      // Same size, mtime put back: only the ctime (and the bytes) tell.
      ['an edit that keeps size and mtime', () => {
        const st = statSync(join(dir, 'a.txt'))
        writeFileSync(join(dir, 'a.txt'), 'AAAA')
        utimesSync(join(dir, 'a.txt'), st.atime, st.mtime)
      }],
      ['a chmod', () => chmodSync(join(dir, 'sub', 'b.txt'), 0o600)],
      ['a rename', () => renameSync(join(dir, 'sub', 'b.txt'), join(dir, 'sub', 'c.txt'))],
      ['a new file', () => writeFileSync(join(dir, 'sub', 'new'), '')],
      ['a deletion', () => unlinkSync(join(dir, 'sub', 'new'))],
      ['a symlink retargeted', () => { unlinkSync(join(dir, 'link')); symlinkSync('sub', join(dir, 'link')) }],
      ['a new directory', () => mkdirSync(join(dir, 'sub', 'deeper'))],
      ['a name with a newline', () => writeFileSync(join(dir, 'x\ny'), '')],
    ]
    for (const [what, change] of changes) {
      change()
      const d = await digest()
      expect(seen.has(d), what).toBe(false)
      seen.add(d)
    }
  })

  it('is settled only when no entry changed within the racy window before it started', async () => {
    const fresh = await probeTree(dir)
    expect(fresh!.settled()).toBe(false)
    const later = await clockAhead(10_000, () => probeTree(dir))
    expect(later!.settled()).toBe(true)
    expect(later!.digest).toBe(fresh!.digest)
  })

  it('gives none for a tree over its entry limit, a missing dir, or an aborted listing', async () => {
    for (let i = 0; i < 20; i++) writeFileSync(join(dir, `f${i}`), '')
    expect(await probeTree(dir, { maxEntries: 10 })).toBeUndefined()
    expect(await probeTree(dir, { maxEntries: 100 })).toBeDefined()
    expect(await probeTree(join(dir, 'missing'))).toBeUndefined()
    expect(await probeTree(dir, { signal: AbortSignal.abort() })).toBeUndefined()
  })

  it('hands a started probe to the first build that takes it; the next one lists anew', async () => {
    startTreeProbe(dir)
    const early = await takeTreeProbe(dir)
    writeFileSync(join(dir, 'a.txt'), 'changed after the early listing')
    const next = await takeTreeProbe(dir)
    expect(early!.dir).toBe(dir)
    expect(next!.digest).not.toBe(early!.digest)
  })

  it('the CLI starts a build\'s listing from its arguments: --context, or a Dockerfile build\'s context dir; not for an engine build, --help or another command', async () => {
    const startedFor = async (argv: string[]): Promise<boolean> => {
      probeEarly(argv)
      const started = probeStarted(dir)
      await takeTreeProbe(dir)
      return started
    }
    expect(await startedFor(['build', 'build.ts', '--context', dir])).toBe(true)
    expect(await startedFor(['build', dir])).toBe(true)
    expect(await startedFor(['build', 'build.ts', '--context', dir, '--engine', 'docker'])).toBe(false)
    expect(await startedFor(['build', 'build.ts', '--context', dir, '--help'])).toBe(false)
    expect(await startedFor(['inspect', dir])).toBe(false)
    expect(probeStarted(dir)).toBe(false)
  })
})
