import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, closeSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import { statStamp } from '../../src/util/stat-stamp.js'
import { copyExecutor, createdBy } from '../../src/ops/copy.js'
import type { CopySpec } from '../../src/graph/nodes/copy-node.js'
import type { Vertex } from '../../src/graph/node.js'
import type { LayerEntry } from '../../src/layer/entry.js'
import { writeLayer } from '../../src/layer/write-layer.js'
import type { LayerRef } from '../../src/oci/types.js'
import type { ExecContext, ImageState } from '../../src/solver/types.js'
import { Store } from '../../src/store/store.js'
import { clockAhead, clockAt } from '../helpers/clock.js'
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

function scratch(layers: LayerRef[] = [], workdir?: string): ImageState {
  return {
    config: { architecture: 'amd64', os: 'linux', config: workdir ? { WorkingDir: workdir } : {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, history: [] },
    layers, args: [], cmdSet: false,
  }
}

function vertex(spec: Partial<CopySpec> & { sources: string[]; dest: string }): Vertex<'copy'> {
  return { id: `sha256:${'0'.repeat(64)}`, kind: 'copy', spec: { fromInput: false, exclude: [], link: false, ...spec }, inputs: [], meta: { description: '' } }
}

async function copy(spec: Partial<CopySpec> & { sources: string[]; dest: string }, parent = scratch(), ctx = ctxFor()) {
  const r = await copyExecutor.exec(vertex(spec), [parent], ctx)
  return { ...r, layer: r.state.layers[r.state.layers.length - 1]!, list: await listLayer(r.state.layers[r.state.layers.length - 1]!) }
}

/** Every entry of a layer blob with its bytes, read back with node-tar's parser (order kept). */
const listLayer = (layer: LayerRef) => listLayerEntries(store.blobs, layer)

function file(rel: string, data: string, mode?: number): void {
  const p = join(context, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
  if (mode !== undefined) chmodSync(p, mode)
}

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'imagesmith-copy-'))
  context = join(tmp, 'context')
  mkdirSync(context)
  store = new Store(join(tmp, 'store'))
})

afterEach(() => {
  rmSync(tmp, { recursive: true, force: true })
})

describe('COPY placement', () => {
  it('copies a directory’s contents (not the directory) into dest, with parents', async () => {
    file('dist/a.js', 'a')
    file('dist/sub/b.js', 'bb')
    const { list, state } = await copy({ sources: ['dist/'], dest: '/app/' })
    expect([...list.keys()]).toEqual(['app', 'app/a.js', 'app/sub', 'app/sub/b.js'])
    expect(list.get('app/sub/b.js')!.data).toBe('bb')
    expect(list.get('app')!.mode).toBe(0o755)
    expect(state.config.history!.at(-1)!.created_by).toBe('COPY dist/ /app/ # buildkit')
    expect(state.config.rootfs.diff_ids).toHaveLength(1)
  })

  it('a directory copied to a destination that does not exist makes it 0755, whatever the source dir mode; dirs inside keep theirs (as buildah and BuildKit)', async () => {
    file('src/a.txt', 'a')
    file('src/inner/b.txt', 'b')
    file('src/priv/p.txt', 'p')
    chmodSync(join(context, 'src'), 0o775)
    chmodSync(join(context, 'src/inner'), 0o775)
    chmodSync(join(context, 'src/priv'), 0o700)
    chmodSync(context, 0o775)
    const up = await copy({ sources: ['src'], dest: '/upload/src2/' })
    expect(Object.fromEntries([...up.list].filter(([, e]) => e.type === 'Directory').map(([k, e]) => [k, e.mode.toString(8)]))).toEqual({
      upload: '755', 'upload/src2': '755', 'upload/src2/inner': '775', 'upload/src2/priv': '700',
    })
    const deep = await copy({ sources: ['src'], dest: '/deep/er/src3' })
    expect(['deep', 'deep/er', 'deep/er/src3'].map((k) => deep.list.get(k)!.mode)).toEqual([0o755, 0o755, 0o755])
    const dot = await copy({ sources: ['.'], dest: 'world/' })
    expect(dot.list.get('world')!.mode).toBe(0o755)
    expect(dot.list.get('world/src')!.mode).toBe(0o775)
    const root = await copy({ sources: ['/'], dest: '/dir' })
    expect(root.list.get('dir')!.mode).toBe(0o755)
    const owned = await copy({ sources: ['src'], dest: '/own/src4/', chown: '1:1' })
    expect(owned.list.get('own/src4')).toMatchObject({ mode: 0o755, uid: 1, gid: 1 })
  })

  it('copies a file into a dest ending in /, and renames it without /', async () => {
    file('x.txt', 'x')
    const into = await copy({ sources: ['x.txt'], dest: '/opt/dir/' })
    expect([...into.list.keys()]).toEqual(['opt', 'opt/dir', 'opt/dir/x.txt'])
    expect(into.list.get('opt')!.mode).toBe(0o755)
    const renamed = await copy({ sources: ['x.txt'], dest: '/opt/y.txt' })
    expect([...renamed.list.keys()]).toEqual(['opt', 'opt/y.txt'])
  })

  it('resolves a relative dest against WorkingDir', async () => {
    file('x.txt', 'x')
    const { list } = await copy({ sources: ['x.txt'], dest: 'sub/' }, scratch([], '/work'))
    expect([...list.keys()]).toEqual(['work', 'work/sub', 'work/sub/x.txt'])
    const dot = await copy({ sources: ['x.txt'], dest: '.' }, scratch([], '/work'))
    expect([...dot.list.keys()]).toEqual(['work', 'work/x.txt'])
  })

  it('several sources need a dest ending in /', async () => {
    file('a', 'a')
    file('b', 'b')
    await expect(copy({ sources: ['a', 'b'], dest: '/out' })).rejects.toMatchObject({ code: ErrorCodes.COPY_DEST_NOT_DIR })
    const { list } = await copy({ sources: ['a', 'b'], dest: '/out/' })
    expect([...list.keys()]).toEqual(['out', 'out/a', 'out/b'])
  })

  it('expands globs with filepath.Match semantics', async () => {
    file('src/a.ts', '1')
    file('src/b.ts', '2')
    file('src/c.js', '3')
    file('src/[x].ts', '4')
    const { list } = await copy({ sources: ['src/*.ts'], dest: '/g/' })
    expect([...list.keys()]).toEqual(['g', 'g/[x].ts', 'g/a.ts', 'g/b.ts'])
    const q = await copy({ sources: ['src/[ab].?s'], dest: '/g/' })
    expect([...q.list.keys()]).toEqual(['g', 'g/a.ts', 'g/b.ts'])
    const esc = await copy({ sources: ['src/\\[x\\].ts'], dest: '/g/' })
    expect([...esc.list.keys()]).toEqual(['g', 'g/[x].ts'])
    const neg = await copy({ sources: ['src/[^ab].*'], dest: '/g/' })
    expect([...neg.list.keys()]).toEqual(['g', 'g/c.js'])
  })

  it('one glob matching several sources, dest without /: the matches are copied in turn, as buildah and BuildKit do (the / rule counts written sources)', async () => {
    file('a.txt', 'a')
    file('b.txt', 'b')
    // No directory yet: each file becomes dest, the last match wins.
    const files = await copy({ sources: ['*.txt'], dest: '/testdir' })
    expect([...files.list.keys()]).toEqual(['testdir'])
    expect(files.list.get('testdir')).toMatchObject({ type: 'File', data: 'b' })
    // A directory match makes dest a directory; a later file goes inside it.
    file('y1/iny', 'i')
    file('y2', 'y')
    const mixed = await copy({ sources: ['y*'], dest: '/mixed2' })
    expect([...mixed.list.keys()]).toEqual(['mixed2', 'mixed2/iny', 'mixed2/y2'])
    expect(mixed.list.get('mixed2')!.mode).toBe(0o755)
    // A directory after a file made dest a file: BuildKit fails ("cannot copy to non-directory").
    file('x1', 'x')
    file('x2/in', 'n')
    await expect(copy({ sources: ['x*'], dest: '/mixed' })).rejects.toMatchObject({ code: ErrorCodes.COPY_DEST_NOT_DIR, details: { path: 'x*', dest: '/mixed' } })
    // Written sources still need the '/'.
    await expect(copy({ sources: ['a.txt', 'y*'], dest: '/two' })).rejects.toMatchObject({ code: ErrorCodes.COPY_DEST_NOT_DIR })
  })

  it('a glob matching nothing copies nothing (AllowEmptyWildcard); a missing literal source fails', async () => {
    file('a.txt', 'a')
    const { list } = await copy({ sources: ['a.txt', 'opt*.cfg'], dest: '/d/' })
    expect([...list.keys()]).toEqual(['d', 'd/a.txt'])
    await expect(copy({ sources: ['missing.txt'], dest: '/d/' })).rejects.toMatchObject({ code: ErrorCodes.COPY_SOURCE_NOT_FOUND, details: { path: 'missing.txt' } })
    await expect(copy({ sources: ['nodir/*.txt'], dest: '/d/' })).rejects.toMatchObject({ code: ErrorCodes.COPY_SOURCE_NOT_FOUND, details: { path: 'nodir/*.txt' } })
  })

  it('rejects ../ sources', async () => {
    await expect(copy({ sources: ['../x'], dest: '/d/' })).rejects.toMatchObject({ code: ErrorCodes.COPY_OUTSIDE_CONTEXT, details: { path: '../x' } })
    await expect(copy({ sources: ['a/../../x'], dest: '/d/' })).rejects.toMatchObject({ code: ErrorCodes.COPY_OUTSIDE_CONTEXT })
  })
})

describe('COPY links', () => {
  it('resolves a symlink source inside the context (absolute target = context root)', async () => {
    file('etc/passwd', 'context passwd')
    symlinkSync('/etc/passwd', join(context, 'link'))
    symlinkSync('../../../../../etc/passwd', join(context, 'climb'))
    const a = await copy({ sources: ['link'], dest: '/out/' })
    expect(a.list.get('out/link')).toMatchObject({ type: 'File', data: 'context passwd' })
    const b = await copy({ sources: ['climb'], dest: '/out/' })
    expect(b.list.get('out/climb')).toMatchObject({ type: 'File', data: 'context passwd' })
  })

  it('a symlink source pointing outside resolves inside the context: missing there means not found', async () => {
    symlinkSync(join(tmp, 'outside.txt'), join(context, 'escape'))
    writeFileSync(join(tmp, 'outside.txt'), 'secret')
    await expect(copy({ sources: ['escape'], dest: '/out/' })).rejects.toMatchObject({ code: ErrorCodes.COPY_SOURCE_NOT_FOUND })
  })

  it('keeps symlinks inside a copied tree as symlinks and hard links as hard links', async () => {
    file('tree/real.txt', 'data')
    symlinkSync('real.txt', join(context, 'tree/sym'))
    symlinkSync('/nowhere', join(context, 'tree/dangling'))
    linkSync(join(context, 'tree/real.txt'), join(context, 'tree/z-hard'))
    linkSync(join(context, 'tree/real.txt'), join(context, 'tree/a-hard'))
    const { list } = await copy({ sources: ['tree'], dest: '/t' })
    expect(list.get('t/sym')).toMatchObject({ type: 'SymbolicLink', linkpath: 'real.txt' })
    expect(list.get('t/dangling')).toMatchObject({ type: 'SymbolicLink', linkpath: '/nowhere' })
    // the first path in layer order carries the bytes, the others link to it
    expect(list.get('t/a-hard')).toMatchObject({ type: 'File', data: 'data' })
    expect(list.get('t/real.txt')).toMatchObject({ type: 'Link', linkpath: 't/a-hard' })
    expect(list.get('t/z-hard')).toMatchObject({ type: 'Link', linkpath: 't/a-hard' })
    const tv = execFileSync('bash', ['-c', `gzip -dc '${store.blobs.blobPath((await copy({ sources: ['tree'], dest: '/t' })).layer.digest)}' | tar -tv`]).toString()
    expect(tv).toMatch(/t\/real\.txt link to t\/a-hard/)
    expect(tv).toMatch(/t\/sym -> real\.txt/)
  })
})

describe('COPY of unix sockets', () => {
  it('a socket named as a source, or inside a copied directory, becomes an empty regular file with its mode (as BuildKit)', async () => {
    mkdirSync(join(context, 'd'))
    const servers = [createServer(), createServer()]
    try {
      for (const [i, p] of ['s.sock', 'd/inner.sock'].entries()) {
        await new Promise<void>((resolve) => servers[i]!.listen(join(context, p), resolve))
        chmodSync(join(context, p), 0o640)
        expect(statSync(join(context, p)).isSocket()).toBe(true)
      }
      const named = await copy({ sources: ['s.sock'], dest: '/c/s' })
      expect([...named.list.keys()]).toEqual(['c', 'c/s'])
      expect(named.list.get('c/s')).toMatchObject({ type: 'File', mode: 0o640, uid: 0, gid: 0, data: '' })
      const inTree = await copy({ sources: ['d'], dest: '/d/' })
      expect([...inTree.list.keys()]).toEqual(['d', 'd/inner.sock'])
      expect(inTree.list.get('d/inner.sock')).toMatchObject({ type: 'File', mode: 0o640, data: '' })
      // --chmod applies as to any file.
      const moded = await copy({ sources: ['s.sock'], dest: '/c/s', chmod: '600' })
      expect(moded.list.get('c/s')).toMatchObject({ type: 'File', mode: 0o600 })
    } finally {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))))
    }
  })
})

describe('COPY .dockerignore and --exclude', () => {
  it('honours .dockerignore with exceptions; an ignored file named explicitly is missing', async () => {
    writeFileSync(join(context, '.dockerignore'), '# comment\n*.log\n/build\n!build/keep.txt\n**/secret*\n')
    file('app.js', 'a')
    file('debug.log', 'l')
    file('build/out.o', 'o')
    file('build/keep.txt', 'k')
    file('deep/er/secret.key', 's')
    file('deep/er/ok.txt', 'ok')
    const { list } = await copy({ sources: ['.'], dest: '/src/' })
    expect([...list.keys()].sort()).toEqual(['.dockerignore', 'app.js', 'build', 'build/keep.txt', 'deep', 'deep/er', 'deep/er/ok.txt'].map((p) => `src/${p}`).concat('src').sort())
    await expect(copy({ sources: ['debug.log'], dest: '/x/' })).rejects.toMatchObject({ code: ErrorCodes.COPY_SOURCE_NOT_FOUND, details: { path: 'debug.log' } })
    await expect(copy({ sources: ['build/out.o'], dest: '/x/' })).rejects.toMatchObject({ code: ErrorCodes.COPY_SOURCE_NOT_FOUND })
    const keep = await copy({ sources: ['build/keep.txt'], dest: '/x/' })
    expect(keep.list.get('x/keep.txt')!.data).toBe('k')
    // an ignored directory with a re-included file holds just that file
    const dir = await copy({ sources: ['build'], dest: '/b/' })
    expect([...dir.list.keys()]).toEqual(['b', 'b/keep.txt'])
  })

  it('enters an excluded directory only for an exception pattern under it, as buildah 1.28 and docker 20.10 do', async () => {
    // Both peers built `COPY . /ctx/` of this context to an empty ctx/: `!*/sub1*` does not start
    // with `subdir/`, so subdir is never entered and sub1.txt stays out.
    writeFileSync(join(context, '.dockerignore'), '*\nsubdir\n!*/sub1*\n')
    file('top.txt', 't')
    file('subdir/sub1.txt', '1')
    file('subdir/sub2.txt', '2')
    file('other/sub1x', 'x')
    const all = await copy({ sources: ['.'], dest: '/ctx/' })
    expect([...all.list.keys()]).toEqual(['ctx'])
    // Named as a source, the excluded directory is not in the context at all (both peers: not found).
    await expect(copy({ sources: ['subdir'], dest: '/s/' })).rejects.toMatchObject({ code: ErrorCodes.COPY_SOURCE_NOT_FOUND, details: { path: 'subdir' } })
    // An exception whose text lies under the directory opens it, at every level down.
    writeFileSync(join(context, '.dockerignore'), '*\n!subdir/sub1*\n!other/deep/f\n')
    file('other/deep/f', 'f')
    const opened = await copy({ sources: ['.'], dest: '/ctx/' })
    expect([...opened.list.keys()]).toEqual(['ctx', 'ctx/other', 'ctx/other/deep', 'ctx/other/deep/f', 'ctx/subdir', 'ctx/subdir/sub1.txt'])
  })

  it('applies exclude patterns relative to the copied directory', async () => {
    file('d/a.txt', 'a')
    file('d/b.md', 'b')
    file('d/sub/c.txt', 'c')
    const { list } = await copy({ sources: ['d'], dest: '/e/', exclude: ['**/*.txt', '!sub/c.txt'] })
    expect([...list.keys()]).toEqual(['e', 'e/b.md', 'e/sub', 'e/sub/c.txt'])
  })
})

describe('COPY ownership and modes', () => {
  it('keeps permission bits (incl. setuid) and sets uid/gid 0 and mtime = epoch', async () => {
    file('bin/tool', '#!/bin/sh', 0o4755)
    file('bin/data', 'd', 0o600)
    const { list } = await copy({ sources: ['bin'], dest: '/usr/local/bin/' })
    expect(list.get('usr/local/bin/tool')).toMatchObject({ mode: 0o4755, uid: 0, gid: 0, mtime: 1_700_000_000 })
    expect(list.get('usr/local/bin/data')!.mode).toBe(0o600)
    for (const e of list.values()) expect(e.mtime).toBe(1_700_000_000)
  })

  it('chmod applies to files and directories', async () => {
    file('d/f', 'f', 0o600)
    file('d/s/g', 'g')
    const { list, state } = await copy({ sources: ['d'], dest: '/m/', chmod: '750' })
    expect(list.get('m/f')!.mode).toBe(0o750)
    expect(list.get('m/s')!.mode).toBe(0o750)
    expect(list.get('m')!.mode).toBe(0o750)
    expect(state.config.history!.at(-1)!.created_by).toBe('COPY --chmod=750 d /m/ # buildkit')
  })

  it('chown with numeric ids needs no lookup; a lone uid is also the gid', async () => {
    file('f', 'f')
    const a = await copy({ sources: ['f'], dest: '/o/', chown: '1000:2000' })
    expect(a.list.get('o/f')).toMatchObject({ uid: 1000, gid: 2000 })
    // created parent directories get the chown owner too (fsutil MkdirAll with chown)
    expect(a.list.get('o')).toMatchObject({ uid: 1000, gid: 2000, mode: 0o755 })
    const b = await copy({ sources: ['f'], dest: '/o/', chown: '33' })
    expect(b.list.get('o/f')).toMatchObject({ uid: 33, gid: 33 })
  })

  it('chown by name reads /etc/passwd and /etc/group from the image layers; existing dirs keep their metadata', async () => {
    const entries: LayerEntry[] = [
      { type: 'dir', path: 'etc', mode: 0o755, uid: 0, gid: 0, mtime: 0 },
      { type: 'file', path: 'etc/group', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0, source: { data: Buffer.alloc(0) } },
      { type: 'file', path: 'etc/passwd', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0, source: { data: Buffer.alloc(0) } },
      { type: 'dir', path: 'tmp', mode: 0o1777, uid: 0, gid: 0, mtime: 0 },
    ]
    const passwd = Buffer.from('root:x:0:0:root:/root:/bin/sh\napp:x:1234:1235:app:/home/app:/bin/sh\n')
    const group = Buffer.from('root:x:0:\nstaff:x:50:app\n')
    const base1 = await writeLayer(entries.map((e) => (e.path === 'etc/passwd' ? { ...e, size: 5, source: { data: Buffer.from('old\n\n') } } : e)), store.blobs)
    // an upper layer replaces passwd and adds group: lookups must see the top-most version
    const base2 = await writeLayer([
      { type: 'dir', path: 'etc', mode: 0o755, uid: 0, gid: 0, mtime: 0 },
      { type: 'file', path: 'etc/group', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: group.length, source: { data: group } },
      { type: 'file', path: 'etc/passwd', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: passwd.length, source: { data: passwd } },
    ], store.blobs)
    file('f', 'f')
    const parent = scratch([base1, base2])
    const a = await copy({ sources: ['f'], dest: '/tmp/', chown: 'app' }, parent)
    expect(a.list.get('tmp/f')).toMatchObject({ uid: 1234, gid: 1235 })
    expect(a.list.get('tmp')).toMatchObject({ mode: 0o1777, uid: 0, gid: 0 })
    const b = await copy({ sources: ['f'], dest: '/home/app/', chown: 'app:staff' }, parent)
    expect(b.list.get('home/app/f')).toMatchObject({ uid: 1234, gid: 50 })
    expect(b.list.get('home')).toMatchObject({ uid: 1234, gid: 50, mode: 0o755 })
    expect(b.state.config.history!.at(-1)!.created_by).toBe('COPY --chown=app:staff f /home/app/ # buildkit')
    await expect(copy({ sources: ['f'], dest: '/x/', chown: 'nobody' }, parent)).rejects.toMatchObject({ code: ErrorCodes.USER_NOT_FOUND })
    // an existing directory counts as a directory even without a trailing slash
    const c = await copy({ sources: ['f'], dest: '/tmp' }, parent)
    expect(c.list.get('tmp/f')).toBeDefined()
  })
})

describe('COPY cache and determinism', () => {
  it('same content → same digest; a change with the same size and mtime → a new digest', async () => {
    file('d/a', 'aaaa')
    file('d/b', 'bbbb')
    utimesSync(join(context, 'd/a'), 1_000_000_000, 1_000_000_000)
    const first = await copy({ sources: ['d'], dest: '/d/' })
    expect(first.cached).toBe(false)
    const again = await copy({ sources: ['d'], dest: '/d/' })
    expect(again.cached).toBe(true)
    expect(again.layer.digest).toBe(first.layer.digest)
    // a fresh store (no cache) makes the very same bytes
    const other = new Store(join(tmp, 'store2'))
    const fresh = await copyExecutor.exec(vertex({ sources: ['d'], dest: '/d/' }), [scratch()], ctxFor({ store: other }))
    expect(fresh.state.layers[0]!.digest).toBe(first.layer.digest)

    const st = statSync(join(context, 'd/a'))
    writeFileSync(join(context, 'd/a'), 'AAAA')
    utimesSync(join(context, 'd/a'), 1_000_000_000, 1_000_000_000)
    expect(statSync(join(context, 'd/a')).mtimeMs).toBe(st.mtimeMs)
    expect(statSync(join(context, 'd/a')).size).toBe(st.size)
    const changed = await copy({ sources: ['d'], dest: '/d/' })
    expect(changed.cached).toBe(false)
    expect(changed.layer.digest).not.toBe(first.layer.digest)
    expect(changed.list.get('d/a')!.data).toBe('AAAA')
  })

  it.each([
    ['just written (its bytes hashed as they are read)', 10],
    ['settled (hashed once by this build, then proven by its stamp before and after the read)', 10_000],
  ])('a context file edited in place (same size) during its read fails with SOURCE_CHANGED and stores nothing; restored, it builds with its own bytes: %s', async (_what, after) => {
    const original = 'a'.repeat(4 << 20)
    file('big.txt', original)
    const host = join(context, 'big.txt')
    // The clock `after` ms past the file's change: 10 is inside the racy window, 10 s outside it.
    const changed = Math.max(statSync(host).ctimeMs, statSync(host).mtimeMs)
    const at = <T>(fn: () => Promise<T>): Promise<T> => clockAt(changed + (after as number), fn)
    const list = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : [])
    const stored = () => ({ blobs: list(join(store.root, 'blobs', 'sha256')), cache: list(join(store.root, 'cache')), snapshots: list(join(store.root, 'snapshots')) })
    const before = stored()
    // The layer writer reports progress every MiB it writes, synchronously and only as it pulls
    // more of the file (uncompressed: one tar chunk read per MiB written). At the first report it
    // has read the file's first MiB: the edit lands in bytes it has not read yet.
    let edited = false
    const step = { vertex: `sha256:${'1'.repeat(64)}` as const, description: 'COPY big.txt /big.txt', rootfsWanted: true }
    const editing = ctxFor({
      compression: 'none', step,
      emit: (ev) => {
        if (ev.type !== 'bytes' || edited) return
        edited = true
        const fd = openSync(host, 'r+')
        writeSync(fd, 'b'.repeat(4096), 3 << 20)
        closeSync(fd)
      },
    })
    const err = await at(() => copy({ sources: ['big.txt'], dest: '/big.txt' }, scratch(), editing)).catch((e: unknown) => e)
    expect(edited).toBe(true)
    expect(err).toMatchObject({ code: ErrorCodes.SOURCE_CHANGED, details: { path: 'big.txt', source: host } })
    // A file just written is hashed as it is read (the hash of what was read is named); a settled
    // one is not hashed twice: its stamp, which the write moved, is what failed it.
    expect('actual' in (err as { details: object }).details).toBe(after === 10)
    // No blob, no cache record, no snapshot.
    expect(stored()).toEqual(before)

    writeFileSync(host, original)
    const rebuilt = await copy({ sources: ['big.txt'], dest: '/big.txt' }, scratch(), ctxFor({ compression: 'none', step }))
    expect(rebuilt.cached).toBe(false)
    expect(rebuilt.list.get('big.txt')!.data === original).toBe(true)
    const again = await copy({ sources: ['big.txt'], dest: '/big.txt' }, scratch(), ctxFor({ compression: 'none', step }))
    expect(again.cached).toBe(true)
    expect(again.layer.digest).toBe(rebuilt.layer.digest)
  })

  it('a stat-cache record whose stamp hides a write fails the step once, then is dropped: the next build hashes the file and holds its bytes', async () => {
    file('f.txt', 'real bytes')
    const host = join(context, 'f.txt')
    // The record a write with an unchanged stamp would leave (a restored ctime, a coarse clock).
    const dir = join(store.root, 'statcache')
    mkdirSync(dir, { recursive: true })
    const cacheFile = join(dir, `${createHash('sha256').update(context).digest('hex').slice(0, 32)}.json`)
    const stale = createHash('sha256').update('old bytes!').digest('hex')
    writeFileSync(cacheFile, JSON.stringify({ [host]: `${statStamp(lstatSync(host))}${stale}` }))
    await expect(copy({ sources: ['f.txt'], dest: '/f.txt' })).rejects.toMatchObject({ code: ErrorCodes.SOURCE_CHANGED, details: { source: host, expected: `sha256:${stale}` } })
    const next = await copy({ sources: ['f.txt'], dest: '/f.txt' })
    expect(next.list.get('f.txt')!.data).toBe('real bytes')
  })

  it('a rebuild that sees the same stamps takes its key from the tree record; a step that misses anyway hashes every file first and fails on a record that named other bytes', async () => {
    file('a.txt', 'aaaa')
    file('sub/b.txt', 'bbbb')
    const statDir = join(store.root, 'statcache')
    const records = () => (existsSync(statDir) ? readdirSync(statDir).filter((n) => n.startsWith('tree-')) : [])
    // Files written just now (the clock 10 ms past their change) are inside the racy window: no
    // record of them may be kept.
    const changed = Math.max(...['a.txt', 'sub/b.txt'].map((f) => statSync(join(context, f))).map((st) => Math.max(st.ctimeMs, st.mtimeMs)))
    const first = await clockAt(changed + 10, () => copy({ sources: ['.'], dest: '/app/' }))
    expect(records()).toEqual([])
    const later = <T>(fn: () => Promise<T>): Promise<T> => clockAhead(10_000, fn)
    const settled = await later(() => copy({ sources: ['.'], dest: '/app/' }))
    expect(settled.layer.digest).toBe(first.layer.digest)
    expect(records()).toHaveLength(1)
    const record = join(statDir, records()[0]!)
    const key = (JSON.parse(readFileSync(record, 'utf8')) as { content: string }).content
    // The same walk again is answered by the record: a record naming other content changes the key.
    writeFileSync(record, JSON.stringify({ content: `sha256:${'e'.repeat(64)}` }))
    const step = { vertex: `sha256:${'2'.repeat(64)}` as const, description: 'COPY . /app/', rootfsWanted: false }
    // That key misses, so the files are hashed before a byte is written: they are not what the record said.
    const err = await later(() => copy({ sources: ['.'], dest: '/app/' }, scratch(), ctxFor({ step }))).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: ErrorCodes.SOURCE_CHANGED })
    expect(existsSync(record)).toBe(false)
    const again = await later(() => copy({ sources: ['.'], dest: '/app/' }, scratch(), ctxFor({ step })))
    expect(again.layer.digest).toBe(first.layer.digest)
    expect((JSON.parse(readFileSync(record, 'utf8')) as { content: string }).content).toBe(key)
    // A record the step trusts and misses with (here: --no-cache) still names the changed files and
    // builds the same layer.
    const rebuilt = await later(() => copy({ sources: ['.'], dest: '/app/' }, scratch(), ctxFor({ step, noCache: true })))
    expect(rebuilt.cached).toBe(false)
    expect(rebuilt.layer.digest).toBe(first.layer.digest)
    // An edit changes the stamps: a new walk digest, the file hashed, the new bytes in the layer.
    file('sub/b.txt', 'BBBB')
    const edited = await later(() => copy({ sources: ['.'], dest: '/app/' }, scratch(), ctxFor({ step })))
    expect(edited.cached).toBe(false)
    expect(edited.reason).toBe('1 context file changed: sub/b.txt')
    expect(edited.list.get('app/sub/b.txt')!.data).toBe('BBBB')
  })

  it('createdBy follows BuildKit', () => {
    expect(createdBy('COPY', { sources: ['a', 'b'], dest: '/x/', fromInput: true, chown: 'u:g', chmod: '644', exclude: ['*.md'], link: true })).toBe('COPY --chown=u:g --chmod=644 a b /x/ # buildkit')
  })
})

describe('COPY --from', () => {
  const hasRootfs = existsSync(join(__dirname, '../../src/snapshot/rootfs.ts'))
  it.runIf(hasRootfs)('copies paths from another stage’s filesystem', async () => {
    const from = await writeLayer([
      { type: 'dir', path: 'app', mode: 0o755, uid: 0, gid: 0, mtime: 0 },
      { type: 'file', path: 'app/bin', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 3, source: { data: Buffer.from('bin') } },
      { type: 'symlink', path: 'app/link', mode: 0o777, uid: 0, gid: 0, mtime: 0, linkname: '/app/bin' },
    ], store.blobs)
    const r = await copyExecutor.exec(
      { ...vertex({ sources: ['/app/link', '/app/bin'], dest: '/usr/bin/', fromInput: true }) },
      [scratch(), scratch([from])],
      ctxFor(),
    )
    const list = await listLayer(r.state.layers[0]!)
    expect(list.get('usr/bin/bin')!.data).toBe('bin')
    expect(list.get('usr/bin/link')).toMatchObject({ type: 'File', data: 'bin' })
    await expect(copyExecutor.exec(vertex({ sources: ['/nope'], dest: '/x/', fromInput: true }), [scratch(), scratch([from])], ctxFor()))
      .rejects.toMatchObject({ code: ErrorCodes.COPY_SOURCE_NOT_FOUND })
  })
})
