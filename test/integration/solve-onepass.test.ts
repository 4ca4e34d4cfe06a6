/**
 * A RUN on top of a COPY (or ADD) layer this build just wrote reads the snapshot the layer writer filled in
 * the same pass: the layer blob is never gunzipped and untarred back. Proven with the real runtime by
 * taking the blob away between the COPY and the RUN: an unpack would fail, the RUN does not. The same
 * holds for a RUN on a RUN (or a COPY --from) whose layer it mounts: the first RUN's snapshot is written
 * from its upper dir's files as its layer reads them.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import type { ProgressEvent } from '../../src/solver/types.js'
import { ensureSnapshot } from '../../src/snapshot/unpack.js'
import { Store } from '../../src/store/store.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { treeNodes } from '../helpers/tree.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc'])

/**
 * Progress hook that moves the blobs a step (by description prefix) wrote out of the store from its
 * end until the next step starting with `until` is done: an unpack of that layer would fail meanwhile.
 */
function blobAwayWhileRun(store: string, prefix: string, aside: string, until = 'RUN'): { onProgress: (e: ProgressEvent) => void; moved: () => string[] } {
  const blobsDir = join(store, 'blobs', 'sha256')
  mkdirSync(aside, { recursive: true })
  let before = new Set<string>()
  let moved: string[] = []
  const onProgress = (e: ProgressEvent) => {
    if (e.type === 'start' && e.description.startsWith(prefix)) before = new Set(existsSync(blobsDir) ? readdirSync(blobsDir) : [])
    if (e.type === 'done' && e.description.startsWith(prefix)) {
      moved = readdirSync(blobsDir).filter((n) => !before.has(n) && !n.includes('.tmp-'))
      for (const n of moved) renameSync(join(blobsDir, n), join(aside, n))
    }
    if (e.type === 'done' && e.description.startsWith(until)) for (const n of moved) renameSync(join(aside, n), join(blobsDir, n))
  }
  return { onProgress, moved: () => moved }
}

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
    const away = blobAwayWhileRun(store, 'COPY', join(work, 'aside'))
    const onProgress = away.onProgress
    const res = await image()
      .from(`oci-archive:${busyboxArchive()}`)
      .copy('.', '/app')
      .run('find /app -type f | wc -l > /count; cat /app/d1/f2.txt | wc -c >> /count')
      .build({ cacheDir: store, context: ctxDir, noCache: true, onProgress })

    expect(away.moved()).toHaveLength(1) // the COPY's layer blob, and it was away while the RUN ran
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

  it('ADD of a local archive: the RUN on top reads the snapshot written with the layer too', async () => {
    const pkg = join(work, 'pkg-src')
    mkdirSync(join(pkg, 'pkg'), { recursive: true })
    writeFileSync(join(pkg, 'pkg', 'x.txt'), 'from the archive\n')
    const addCtx = join(work, 'add-ctx')
    mkdirSync(addCtx)
    execFileSync('tar', ['-C', pkg, '-cf', join(addCtx, 'pkg.tar'), 'pkg'])
    const store = join(work, 'store-add')
    const away = blobAwayWhileRun(store, 'ADD', join(work, 'aside-add'))
    const res = await image().from(`oci-archive:${busyboxArchive()}`).add('pkg.tar', '/opt/').run('cat /opt/pkg/x.txt > /out')
      .build({ cacheDir: store, context: addCtx, noCache: true, onProgress: away.onProgress })
    expect(away.moved()).toHaveLength(1)
    const out = await ensureSnapshot(new Store(store), res.layers.at(-1)!)
    expect(readFileSync(join(out.dir, 'out'), 'utf8')).toBe('from the archive\n')
  }, 60_000)

  it('a RUN on a fresh RUN layer reads the snapshot written with that layer, which is the layer unpacked node for node', async () => {
    const store = join(work, 'store-run-run')
    const away = blobAwayWhileRun(store, 'RUN mkdir', join(work, 'aside-run'), 'RUN ls')
    const first = 'mkdir -p /out/sub && echo a > /out/a && chmod 4755 /out/a && ln -s a /out/l && ln /out/a /out/sub/h && chown 1000:1001 /out/sub && echo b > /out/sub/b && chmod 600 /out/sub/b'
    const res = await image().from(`oci-archive:${busyboxArchive()}`).run(first).run('ls -lnR /out > /listing')
      .build({ cacheDir: store, noCache: true, onProgress: away.onProgress })
    expect(away.moved()).toHaveLength(1) // the first RUN's layer blob, away while the second RUN ran
    const layer = res.layers.at(-2)!
    const written = join(store, 'snapshots', layer.diffId.slice('sha256:'.length))
    expect(existsSync(`${written}.json`)).toBe(true)
    // The same blob unpacked in another store.
    const other = new Store(join(work, 'store-run-run-unpacked'))
    mkdirSync(join(other.root, 'blobs', 'sha256'), { recursive: true })
    copyFileSync(new Store(store).blobs.blobPath(layer.digest), other.blobs.blobPath(layer.digest))
    const unpacked = await ensureSnapshot(other, layer)
    expect(treeNodes(written)).toEqual(treeNodes(unpacked.dir))
    expect(Object.keys(treeNodes(written))).toEqual(expect.arrayContaining(['out/a', 'out/l', 'out/sub/h', 'out/sub/b']))
    const listing = readFileSync(join((await ensureSnapshot(new Store(store), res.layers.at(-1)!)).dir, 'listing'), 'utf8')
    expect(listing).toMatch(/-rwsr-xr-x\s+2 0\s+0 .* a\n/)
    expect(listing).toMatch(/-rw-------\s+1 0\s+0 .* b\n/)
  }, 60_000)

  it('a RUN whose layer the tee cannot write (it deletes a file of the base: a whiteout) is unpacked for the RUN on top as before', async () => {
    const store = join(work, 'store-run-whiteout')
    const res = await image().from(`oci-archive:${busyboxArchive()}`).run('rm /bin/true && echo x > /x').run('ls /bin > /bins; cat /x >> /bins')
      .build({ cacheDir: store, noCache: true })
    const layer = res.layers.at(-2)!
    const snap = await ensureSnapshot(new Store(store), layer)
    expect(snap.whiteouts).toBe(true)
    const out = readFileSync(join((await ensureSnapshot(new Store(store), res.layers.at(-1)!)).dir, 'bins'), 'utf8').split('\n')
    expect(out).not.toContain('true')
    expect(out).toContain('false')
    expect(out.at(-2)).toBe('x')
  }, 60_000)
})
