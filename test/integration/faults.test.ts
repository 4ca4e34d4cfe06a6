/**
 * Real faults, no mocks: a full tmpfs, a read-only output, unreadable and looping context files, a
 * missing context, runtimes that exit at once. Each failure must leave build() and the CLI as an
 * ImagesmithError with a stable code, details naming the offending thing, and nothing partial behind.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCodes, image, ImagesmithError, type BuildOptions } from '../../src/index.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { resolveRegistryOptions } from '../../src/pipeline/resolve-options.js'
import { parseReference } from '../../src/reference/reference.js'
import { RegistryClient } from '../../src/registry/client.js'
import { PullSession } from '../../src/registry/pull.js'
import { ensureSnapshot } from '../../src/snapshot/unpack.js'
import { Store } from '../../src/store/store.js'
import { seedBases, startTestRegistry, type TestRegistry } from '../helpers/registry.js'
import { requireTools } from '../helpers/tools.js'
import { listLayerEntries } from '../helpers/layer-listing.js'
import { busyboxArchive, cleanupTmpDirs, mountsUnder, removeTree, tmpDir } from '../helpers/testbed.js'

const repo = resolve(__dirname, '../..')
const bin = join(repo, 'bin', 'imagesmith.js')
const api = join(repo, 'src', 'index.ts')

let work: string
beforeAll(async () => {
  work = await tmpDir('ism-faults-')
})
afterAll(async () => {
  for (const m of mountsUnder(work)) spawnSync('umount', ['-l', m])
  await removeTree(work)
  await cleanupTmpDirs()
})

const fresh = (name: string): string => {
  const d = join(work, name)
  mkdirSync(d, { recursive: true })
  return d
}

async function failure(p: Promise<unknown>): Promise<ImagesmithError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  )
  expect(e, 'the build should have failed').toBeInstanceOf(ImagesmithError)
  return e as ImagesmithError
}

/** Every blob hashes to its name, and no temp file (of a live or dead writer) is left anywhere in the store. */
function verifyStore(cache: string): void {
  const blobs = join(cache, 'blobs', 'sha256')
  for (const name of existsSync(blobs) ? readdirSync(blobs) : []) {
    expect(createHash('sha256').update(readFileSync(join(blobs, name))).digest('hex'), `blob ${name}`).toBe(name)
  }
  const temps: string[] = []
  const walk = (dir: string): void => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, d.name)
      if (/\.tmp$|\.partial$|\.tmp-\d+-/.test(d.name) || dir === join(cache, 'tmp') || dir === join(cache, 'work')) temps.push(p)
      if (d.isDirectory() && !d.isSymbolicLink()) walk(p)
    }
  }
  walk(cache)
  expect(temps).toEqual([])
  expect(mountsUnder(cache).filter((m) => m !== cache)).toEqual([]) // the cache may itself be a tmpfs
}

function blobNames(cache: string): string[] {
  const dir = join(cache, 'blobs', 'sha256')
  return existsSync(dir) ? readdirSync(dir).sort() : []
}

/** A tmpfs mounted at a fresh dir (unmounted in afterAll). */
function tmpfs(name: string, options: string): string {
  const d = fresh(name)
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', d])
  return d
}

/** The CLI run as users run it, optionally without the capabilities that let root read anything. */
function cli(args: string[], opts: { cache: string; dropDac?: boolean }): { code: number | null; stderr: string; stdout: string } {
  const argv = [process.execPath, bin, ...args]
  const cmd = opts.dropDac
    ? ['setpriv', '--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search', ...argv]
    : argv
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: work, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: opts.cache }, timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Runs a build in a child process without CAP_DAC_*; returns what it threw (name, code, details, cause's errno). */
function apiFailure(chain: string, opts: BuildOptions): { name: string; code: string; details: Record<string, unknown>; cause?: string } {
  const p = join(work, `api-${randomBytes(4).toString('hex')}.ts`)
  writeFileSync(
    p,
    `import { image } from ${JSON.stringify(api)}\n` +
      `${chain}.build(${JSON.stringify(opts)}).then(() => console.log('null'), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, details: e.details, cause: e.cause?.code })))\n`,
  )
  const r = spawnSync('setpriv', ['--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search', process.execPath, '--import', 'tsx', p], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 120_000,
  })
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? 'null') as ReturnType<typeof apiFailure> | null
  expect(res, `the build should have failed: ${r.stderr}`).not.toBeNull()
  return res!
}

function script(name: string, body: string): string {
  const p = join(work, name)
  writeFileSync(p, `import { image } from ${JSON.stringify(api)}\n${body}\n`)
  return p
}

describe('faults: the build context', () => {
  it('a missing context dir is named, as docker build names it', async () => {
    const cache = fresh('cache-missing-ctx')
    const missing = join(work, 'no-such-context')
    const e = await failure(image().from('scratch').copy('a.txt', '/a.txt').build({ context: missing, cacheDir: cache }))
    expect(e.code).toBe(ErrorCodes.CONTEXT_NOT_FOUND)
    expect(e.details.path).toBe(missing)
    expect(e.message).toContain('unable to prepare context')
    expect(e.message).toContain(missing)
    expect(e.message).not.toContain('a.txt')
    verifyStore(cache)

    const r = cli(['build', script('missing-ctx.ts', `export default image().from('scratch').copy('a.txt', '/a.txt')`), '--context', missing], { cache })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`error [CONTEXT_NOT_FOUND]: unable to prepare context: path ${JSON.stringify(missing)} not found`)
  })

  it('an unreadable context file is CONTEXT_UNREADABLE naming the file (CLI without CAP_DAC_*)', async () => {
    const cache = fresh('cache-unreadable')
    const ctx = fresh('ctx-unreadable')
    mkdirSync(join(ctx, 'app'))
    writeFileSync(join(ctx, 'app', 'ok.txt'), 'ok\n')
    writeFileSync(join(ctx, 'app', 'secret.txt'), 'no\n')
    chmodSync(join(ctx, 'app', 'secret.txt'), 0o000)
    const out = join(fresh('out-unreadable'), 'img.tar')
    const s = script('unreadable.ts', `export default image().from('scratch').copy('app', '/app/')`)
    const r = cli(['build', s, '--context', ctx, '-o', `type=oci,dest=${out}`, '--progress', 'plain'], { cache, dropDac: true })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/error \[CONTEXT_UNREADABLE\]: cannot read app\/secret\.txt in the build context/)
    expect(r.stderr).toContain('COPY app /app/')
    expect(existsSync(out)).toBe(false)
    expect(readdirSync(join(out, '..'))).toEqual([])
    verifyStore(cache)

    // The same through the API (a child process without CAP_DAC_*): path and step in details.
    const e = apiFailure(`image().from('scratch').copy('app', '/app/')`, { context: ctx, cacheDir: cache, output: { type: 'oci', dest: out } })
    expect(e).toMatchObject({ name: 'ImagesmithError', code: 'CONTEXT_UNREADABLE', cause: 'EACCES' })
    expect(e.details).toMatchObject({ path: join(ctx, 'app', 'secret.txt'), source: 'app/secret.txt', step: 'COPY app /app/' })
    expect(existsSync(out)).toBe(false)
    verifyStore(cache)
  })

  it('a symlink loop inside a copied tree is copied as a symlink; a COPY source that is a loop is SYMLINK_LOOP', async () => {
    const cache = fresh('cache-loop')
    const ctx = fresh('ctx-loop')
    mkdirSync(join(ctx, 'tree'))
    symlinkSync('self', join(ctx, 'tree', 'self'))
    symlinkSync('b', join(ctx, 'tree', 'a'))
    symlinkSync('a', join(ctx, 'tree', 'b'))
    symlinkSync('loop', join(ctx, 'loop'))
    const ok = await image().from('scratch').copy('tree', '/tree/').build({ context: ctx, cacheDir: cache })
    const entries = await listLayerEntries(new BlobStore(cache), ok.layers[0]!)
    expect([...entries].filter(([, e]) => e.type === 'SymbolicLink').map(([p, e]) => `${p} -> ${e.linkpath}`).sort()).toEqual(['tree/a -> b', 'tree/b -> a', 'tree/self -> self'])

    const out = join(fresh('out-loop'), 'img.tar')
    const e = await failure(image().from('scratch').copy('loop', '/x').build({ context: ctx, cacheDir: cache, output: { type: 'oci', dest: out } }))
    expect(e.code).toBe(ErrorCodes.SYMLINK_LOOP)
    expect(e.details.path).toBe('loop')
    expect(e.details.step).toBe('COPY loop /x')
    expect(existsSync(out)).toBe(false)
    verifyStore(cache)
  })
})

describe('faults: disks', () => {
  it('a 50 MB layer into a store on a 20 MB tmpfs: NO_SPACE, the store still verifies, no output', async () => {
    const cache = tmpfs('cache-full', 'size=20m')
    const ctx = fresh('ctx-big')
    writeFileSync(join(ctx, 'big.bin'), randomBytes(50 << 20))
    const outDir = fresh('out-full')
    const out = join(outDir, 'img.tar')
    const e = await failure(image().from('scratch').copy('big.bin', '/big.bin').build({ context: ctx, cacheDir: cache, output: { type: 'oci', dest: out } }))
    expect(e.code).toBe(ErrorCodes.NO_SPACE)
    expect(String(e.details.path).startsWith(cache)).toBe(true)
    expect(e.details.step).toBe('COPY big.bin /big.bin')
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ENOSPC')
    expect(readdirSync(outDir)).toEqual([])
    verifyStore(cache)

    // The same store still builds what fits.
    writeFileSync(join(ctx, 'small.txt'), 'fits\n')
    const ok = await image().from('scratch').copy('small.txt', '/small.txt').build({ context: ctx, cacheDir: cache, output: { type: 'oci', dest: out } })
    expect(ok.layers).toHaveLength(1)
    verifyStore(cache)
  })

  it('a read-only output dir: OUTPUT_NOT_WRITABLE naming the output, nothing left (archive, layout, CLI)', async () => {
    const cache = fresh('cache-ro')
    const ctx = fresh('ctx-ro')
    writeFileSync(join(ctx, 'a.txt'), 'a\n')
    const ro = tmpfs('out-ro', 'ro,size=1m')
    const chain = image().from('scratch').copy('a.txt', '/a.txt')
    for (const output of [{ type: 'oci', dest: join(ro, 'img.tar') }, { type: 'oci-layout', dest: join(ro, 'layout') }] as const) {
      const e = await failure(chain.build({ context: ctx, cacheDir: cache, output }))
      expect(e.code).toBe(ErrorCodes.OUTPUT_NOT_WRITABLE)
      expect(e.details.path).toBe(output.dest)
      expect(e.message).toContain(output.dest)
      // Node's recursive mkdir (the layout's temp dir) reports EROFS as ENOENT.
      expect((e.cause as NodeJS.ErrnoException).code).toBe(output.type === 'oci' ? 'EROFS' : 'ENOENT')
      expect(readdirSync(ro)).toEqual([])
    }
    verifyStore(cache)
    const dest = join(ro, 'cli.tar')
    const r = cli(['build', script('ro.ts', `export default image().from('scratch').copy('a.txt', '/a.txt')`), '--context', ctx, '-o', `type=oci,dest=${dest}`], { cache })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`error [OUTPUT_NOT_WRITABLE]: cannot write the output ${dest}`)
    expect(readdirSync(ro)).toEqual([])
  })
})

const registryBed = requireTools(['docker-registry', 'skopeo'], { needsRoot: true })

describe.skipIf(registryBed.skip)('faults: disks under a pull', () => {
  let reg: TestRegistry
  const amd64 = { os: 'linux', architecture: 'amd64' }
  beforeAll(async () => {
    reg = await startTestRegistry()
    await seedBases(reg)
  })
  afterAll(async () => {
    await reg?.stop()
  })
  async function pull(store: Store): Promise<Awaited<ReturnType<PullSession['pull']>>> {
    const s = new PullSession(new RegistryClient({ ...resolveRegistryOptions({}, {}), backoffMs: 20 }))
    try {
      return await s.pull(parseReference(`${reg.host}/library/busybox`), amd64, store.blobs)
    } finally {
      s.client.close()
    }
  }

  it('a pull into a store on a 600 kB tmpfs (the 1 MB layer does not fit): NO_SPACE naming the store, in the API and the CLI; no temp file, no partial blob', async () => {
    const cache = tmpfs('cache-pull-full', 'size=600k')
    const store = new Store(cache)
    await store.init()
    const e = await failure(pull(store))
    expect(e.code).toBe(ErrorCodes.NO_SPACE)
    expect(String(e.details.path).startsWith(cache)).toBe(true)
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ENOSPC')
    verifyStore(cache)
    expect(blobNames(cache)).toHaveLength(2) // the manifest and the config; not the layer

    const r = cli(['pull', `${reg.host}/library/busybox`, '--cache-dir', cache], { cache })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error \[NO_SPACE\]: no space left on device writing /m)
    verifyStore(cache)
  })

  it('unpacking a layer onto a full disk is NO_SPACE naming the snapshots dir (the blob is not blamed), and leaves no partial snapshot', async () => {
    const cache = fresh('cache-unpack-full')
    const store = new Store(cache)
    await store.init()
    const img = await pull(store)
    const snapshots = join(cache, 'snapshots')
    mkdirSync(snapshots, { recursive: true })
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', snapshots])
    try {
      const e = await failure(ensureSnapshot(store, img.layers[0]!))
      expect(e.code).toBe(ErrorCodes.NO_SPACE)
      expect(e.details.path).toBe(snapshots)
      expect(e.details.digest).toBe(img.layers[0]!.digest)
      expect(readdirSync(snapshots)).toEqual([])
    } finally {
      execFileSync('umount', [snapshots])
    }
    verifyStore(cache)
    // With room again the same layer unpacks: nothing was recorded against it.
    const snap = await ensureSnapshot(store, img.layers[0]!)
    expect(existsSync(join(snap.dir, 'bin', 'busybox'))).toBe(true)
  })
})

describe('faults: the runtime', () => {
  it('a runtime binary that exits at once (0 or 1) is RUNTIME_FAILED naming it; the RUN yields no layer', async () => {
    const cache = fresh('cache-runtime')
    const base = image().from(`oci-archive:${busyboxArchive()}`)
    await base.env('A', '1').build({ cacheDir: cache })
    const before = blobNames(cache)
    for (const status of [0, 1]) {
      const runtime = join(work, `runtime-exit-${status}`)
      writeFileSync(runtime, `#!/bin/sh\nexit ${status}\n`, { mode: 0o755 })
      const out = join(fresh(`out-runtime-${status}`), 'img.tar')
      const e = await failure(base.run('echo ran > /ran').build({ cacheDir: cache, runtime, output: { type: 'oci', dest: out } }))
      expect(e.code).toBe(ErrorCodes.RUNTIME_FAILED)
      expect(e.details.runtime).toBe(runtime)
      expect(e.details.step).toBe('RUN echo ran > /ran')
      expect(e.message).toContain(runtime)
      expect(e.message).toContain(status === 0 ? 'without running' : 'exited 1')
      expect(existsSync(out)).toBe(false)
      expect(blobNames(cache)).toEqual(before)
      verifyStore(cache)
    }
  })
})

describe('faults: options', () => {
  it('--network host is the network.host entitlement: refused without --allow (typed ENTITLEMENT_REQUIRED in the CLI and in build()), accepted with it', async () => {
    const cache = fresh('cache-net')
    const net = script('net.ts', `export default image().from('scratch')`)
    const r = cli(['build', net, '--network', 'host'], { cache })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('error [ENTITLEMENT_REQUIRED]')
    expect(r.stderr).toContain('--allow network.host')
    expect(cli(['build', net, '--network', 'host', '--allow', 'network.host'], { cache }).code).toBe(0)
    expect(cli(['build', net, '--network', 'bridge'], { cache }).code).toBe(2)
    expect(cli(['build', net, '--allow', 'device'], { cache }).code).toBe(2)
    const e = await failure(image().from('scratch').build({ cacheDir: cache, network: 'host' }))
    expect(e.code).toBe(ErrorCodes.ENTITLEMENT_REQUIRED)
    expect(e.details).toMatchObject({ option: 'network', network: 'host', entitlement: 'network.host' })
    await image().from('scratch').build({ cacheDir: cache, network: 'host', allow: ['network.host'] })
  })

  it('--progress tty is accepted and documented in the help', () => {
    const cache = fresh('cache-progress')
    const r = cli(['build', script('tty.ts', `export default image().from('scratch').env('A', '1')`), '--progress', 'tty'], { cache })
    expect(r.code).toBe(0)
    expect(cli(['--help'], { cache }).stdout).toContain('--progress auto|plain|tty|rawjson|quiet')
  })
})

