/**
 * A RUN on top of a COPY layer this build just wrote reads the snapshot the layer writer filled in
 * the same pass: the layer blob is never gunzipped and untarred back. Proven with the real runtime by
 * taking the blob away between the COPY and the RUN: an unpack would fail, the RUN does not.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import type { ProgressEvent } from '../../src/solver/types.js'
import { ensureSnapshot } from '../../src/snapshot/unpack.js'
import { Store } from '../../src/store/store.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc'])

describe.skipIf(bed.skip)('a RUN on a fresh COPY layer', () => {
  let work: string
  let ctxDir: string

  beforeAll(async () => {
    work = await tmpDir('ism-onepass-')
    ctxDir = join(work, 'ctx')
    for (let d = 0; d < 3; d++) {
      mkdirSync(join(ctxDir, `d${d}`), { recursive: true })
      for (let f = 0; f < 5; f++) writeFileSync(join(ctxDir, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`.repeat(100 * (f + 1)))
    }
  })
  afterAll(cleanupTmpDirs)

  it('reads the snapshot written with the layer: the layer blob is not needed by the RUN, and the snapshot shares no inode with the context', async () => {
    const store = join(work, 'store')
    const blobsDir = join(store, 'blobs', 'sha256')
    const aside = join(work, 'aside')
    mkdirSync(aside)
    let before = new Set<string>()
    let moved: string[] = []
    const onProgress = (e: ProgressEvent) => {
      if (e.type === 'start' && e.description.startsWith('COPY')) before = new Set(existsSync(blobsDir) ? readdirSync(blobsDir) : [])
      // The COPY's new blob goes away until the RUN is done: unpacking it would fail.
      if (e.type === 'done' && e.description.startsWith('COPY')) {
        moved = readdirSync(blobsDir).filter((n) => !before.has(n) && !n.includes('.tmp-'))
        for (const n of moved) renameSync(join(blobsDir, n), join(aside, n))
      }
      if (e.type === 'done' && e.description.startsWith('RUN')) for (const n of moved) renameSync(join(aside, n), join(blobsDir, n))
    }
    const res = await image()
      .from(`oci-archive:${busyboxArchive()}`)
      .copy('.', '/app')
      .run('find /app -type f | wc -l > /count; cat /app/d1/f2.txt | wc -c >> /count')
      .build({ cacheDir: store, context: ctxDir, noCache: true, onProgress })

    expect(moved).toHaveLength(1) // the COPY's layer blob, and it was away while the RUN ran
    expect(res.vertices.filter((v) => !v.cached).map((v) => v.description)).toEqual([expect.stringMatching(/^FROM /), 'COPY . /app', 'RUN find /app -type f | wc -l > /count; cat /app/d1/f2.txt | wc -c >> /count'])
    const copyLayer = res.layers.at(-2)!
    const snap = join(store, 'snapshots', copyLayer.diffId.slice('sha256:'.length))
    expect(existsSync(`${snap}.json`)).toBe(true)
    const inSnap = statSync(join(snap, 'app/d1/f2.txt'))
    const inCtx = statSync(join(ctxDir, 'd1/f2.txt'))
    expect(inSnap.ino).not.toBe(inCtx.ino)
    expect(inSnap.nlink).toBe(1)
    expect(inSnap.size).toBe(inCtx.size)
    expect(lstatSync(join(snap, 'app')).isDirectory()).toBe(true)
    // What the RUN saw, through its own layer's snapshot.
    const runLayer = res.layers.at(-1)!
    const runSnap = await ensureSnapshot(new Store(store), runLayer)
    expect(readFileSync(join(runSnap.dir, 'count'), 'utf8').split('\n').map((s) => s.trim())).toEqual(['15', String(inCtx.size), ''])
  }, 60_000)

  it('one context file changed: the new snapshot hard-links the unchanged files of the previous one and writes only the changed file; the RUN sees the new bytes', async () => {
    const store = join(work, 'store-one-file')
    const build = () => image().from(`oci-archive:${busyboxArchive()}`).copy('.', '/app').run('cat /app/d0/f0.txt > /seen').build({ cacheDir: store, context: ctxDir })
    const first = await build()
    writeFileSync(join(ctxDir, 'd0', 'f0.txt'), 'changed\n')
    const second = await build()
    const [a, b] = [first, second].map((r) => join(store, 'snapshots', r.layers.at(-2)!.diffId.slice('sha256:'.length)))
    expect(a).not.toBe(b)
    const ino = (dir: string, p: string) => statSync(join(dir, 'app', p)).ino
    expect(ino(b, 'd1/f2.txt')).toBe(ino(a, 'd1/f2.txt'))
    expect(statSync(join(b, 'app/d1/f2.txt')).nlink).toBe(2)
    expect(ino(b, 'd0/f0.txt')).not.toBe(ino(a, 'd0/f0.txt'))
    expect(readFileSync(join(b, 'app/d0/f0.txt'), 'utf8')).toBe('changed\n')
    expect(readFileSync(join(a, 'app/d0/f0.txt'), 'utf8')).toBe('file 0/0\n'.repeat(100))
    const seen = await ensureSnapshot(new Store(store), second.layers.at(-1)!)
    expect(readFileSync(join(seen.dir, 'seen'), 'utf8')).toBe('changed\n')
  }, 60_000)
})
