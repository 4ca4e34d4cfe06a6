/**
 * Layers compared with what BuildKit writes for the same steps: hard links of every type, device
 * numbers past 255, names that are not UTF-8. The BuildKit listing below is GNU `tar -tvf` of the
 * RUN layer that docker 20.10's BuildKit made for {@link SCRIPT} on the same busybox base (dates
 * cut, `--numeric-owner`). RUN is checked on overlay and on the copy fallback; COPY from a context
 * holding the same kinds of entries; and the unpacker, by a further RUN that lists the tree.
 */
import { execFileSync } from 'node:child_process'
import { createReadStream, linkSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runExecutor } from '../../src/ops/run.js'
import type { Digest } from '../../src/oci/media-types.js'
import { MediaType } from '../../src/oci/media-types.js'
import { fromDockerfile, image } from '../../src/index.js'
import type { LocalBuildResult } from '../../src/pipeline/options.js'
import { setOverlaySupport } from '../../src/snapshot/overlay.js'
import type { ImageState, ProgressEvent } from '../../src/solver/types.js'
import { Store } from '../../src/store/store.js'
import { busyboxArchive, busyboxRootfsTar, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { stepContext } from '../helpers/run-step.js'

const SCRIPT = [
  'mkdir /nodes && mknod /nodes/x c 511 70000 && mknod /nodes/big c 4095 1048575 && cd /nodes',
  'echo a > a && ln -s a sym && ln sym sym-hard && mkfifo fifo && ln fifo fifo-hard && ln x x-hard',
  `touch "$(printf 'bytes-\\377\\376')" && mkdir "$(printf 'dir-\\377')" && echo hi > "$(printf 'dir-\\377/f\\376')"`,
  `ln -s "$(printf 'bytes-\\377\\376')" "$(printf 'ln-\\377')"`,
].join(' && ')

/** BuildKit's RUN layer for SCRIPT, under nodes/ (the whole layer is {@link RUN_LAYER}). */
const BUILDKIT = [
  'drwxr-xr-x 0/0 0 nodes/',
  '-rw-r--r-- 0/0 2 nodes/a',
  'crw-r--r-- 0/0 4095,1048575 nodes/big',
  '-rw-r--r-- 0/0 0 nodes/bytes-\\377\\376',
  'drwxr-xr-x 0/0 0 nodes/dir-\\377/',
  '-rw-r--r-- 0/0 3 nodes/dir-\\377/f\\376',
  'prw-r--r-- 0/0 0 nodes/fifo',
  'hrw-r--r-- 0/0 0 nodes/fifo-hard link to nodes/fifo',
  'lrwxrwxrwx 0/0 0 nodes/ln-\\377 -> bytes-\\377\\376',
  'lrwxrwxrwx 0/0 0 nodes/sym -> a',
  'hrwxrwxrwx 0/0 0 nodes/sym-hard link to nodes/sym',
  'crw-r--r-- 0/0 511,70000 nodes/x',
  'hrw-r--r-- 0/0 0 nodes/x-hard link to nodes/x',
]

/**
 * The directories docker 20.10's BuildKit and buildah 1.28 both keep in a RUN layer on this base
 * (no /dev, /proc, /sys; an /etc without hosts or resolv.conf): the mount points of the runtime's
 * own filesystems, and /etc, where the /etc/hosts and /etc/resolv.conf mount points were made and
 * removed again. A later RUN finds the first three and touches /etc again.
 */
const STUBS = ['drwxr-xr-x 0/0 0 dev/', 'drwxr-xr-x 0/0 0 etc/']
const STUBS_AFTER = ['drwxr-xr-x 0/0 0 proc/', 'drwxr-xr-x 0/0 0 sys/']
const RUN_LAYER = [...STUBS, ...BUILDKIT, ...STUBS_AFTER]
const ETC = 'drwxr-xr-x 0/0 0 etc/'

/** What a RUN on top of those layers sees: link counts, types, device numbers (hex), raw names (`ls -l`). */
const LIST = 'stat -c "%h %F %t:%T %n" /nodes/sym /nodes/sym-hard /nodes/fifo-hard /nodes/x /nodes/x-hard /nodes/big && ls -l /nodes/x && for f in /nodes/* /nodes/dir-*/*; do echo "name:$f"; done && ls -la /nodes'
const SEEN = [
  '2 symbolic link 0:0 /nodes/sym',
  '2 symbolic link 0:0 /nodes/sym-hard',
  '2 fifo 0:0 /nodes/fifo-hard',
  '2 character special file 1ff:11170 /nodes/x',
  '2 character special file 1ff:11170 /nodes/x-hard',
  '1 character special file fff:fffff /nodes/big',
]

let work: string
let layout = 0
let store: Store
let busybox: ImageState

afterAll(async () => {
  await cleanupTmpDirs()
})

beforeAll(async () => {
  work = await tmpDir('ism-fidelity-')
  store = new Store(join(work, 'store'))
  await store.blobs.init()
  const { digest, size } = await store.blobs.putStream(createReadStream(busyboxRootfsTar()))
  busybox = {
    config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [digest] }, history: [] },
    layers: [{ digest, diffId: digest, size, mediaType: MediaType.OciLayer }],
    args: [],
    cmdSet: false,
  }
})

/**
 * One RUN step through the executor on the test's store, so that the copy fallback can be forced
 * (the overlay probe is per store). Returns the new state and the step's stdout (bytes as latin1).
 */
let vid = 0
async function runStep(state: ImageState, command: string): Promise<{ state: ImageState; stdout: string }> {
  const logs: Buffer[] = []
  const ctx = stepContext(store, work, (e) => { if (e.type === 'log' && e.stream === 'stdout') logs.push(e.data) })
  const id = `sha256:${(++vid).toString(16).padStart(64, 'f')}` as Digest
  const r = await runExecutor.exec({ id, kind: 'run', spec: { command: [command], shellForm: true, network: 'default', mounts: [] }, inputs: [], meta: { description: 'test' } }, [state], ctx)
  return { state: r.state, stdout: Buffer.concat(logs).toString('latin1') }
}

/** GNU tar's verbose listing of a layer blob, dates cut, names escaped (`\377`) as tar prints them. */
function tarListing(blob: string): string[] {
  const out = execFileSync('tar', ['--numeric-owner', '--quoting-style=escape', '-tvzf', blob]).toString('latin1')
  return out.split('\n').filter(Boolean).map((l) => {
    const m = /^(\S+) (\S+)\s+(\S+) \S+ \S+ (.*)$/.exec(l)
    if (!m) throw new Error(`unexpected tar line ${l}`)
    return `${m[1]} ${m[2]} ${m[3]} ${m[4]}`
  })
}

async function build(b: ReturnType<typeof image>, context: string): Promise<{ result: LocalBuildResult; blob: (i: number) => string; stdout: string }> {
  const dest = join(work, `layout-${++layout}`)
  const logs: Buffer[] = []
  const onProgress = (e: ProgressEvent) => { if (e.type === 'log' && e.stream === 'stdout') logs.push(e.data) }
  const result = await b.build({ context, cacheDir: join(work, `cache-${layout}`), output: { type: 'oci-layout', dest }, onProgress })
  return {
    result,
    blob: (i) => join(dest, 'blobs', 'sha256', result.manifest.layers.at(i)!.digest.slice('sha256:'.length)),
    stdout: Buffer.concat(logs).toString('latin1'),
  }
}

const base = () => image().from(`oci-archive:${busyboxArchive()}`)

function expectSeen(stdout: string): void {
  const lines = stdout.split('\n')
  expect(lines.slice(0, SEEN.length)).toEqual(SEEN)
  expect(lines[SEEN.length]).toMatch(/^crw-r--r-- +2 root +root +511, +70000 .* \/nodes\/x$/)
  // The shell prints the names as raw bytes (stdout read as latin1): 0xff 0xfe came through.
  expect(lines).toContain('name:/nodes/bytes-\xff\xfe')
  expect(lines).toContain('name:/nodes/dir-\xff/f\xfe')
  expect(lines).toContain('name:/nodes/ln-\xff')
  expect(lines.some((l) => /^lrwxrwxrwx +2 root +root +1 .* sym-hard -> a$/.test(l))).toBe(true)
  expect(lines.some((l) => /^prw-r--r-- +2 root +root .* fifo-hard$/.test(l))).toBe(true)
}

describe('RUN layers match BuildKit: hard links of any type, device numbers, byte names', () => {
  for (const fallback of [false, true]) {
    it(`${fallback ? 'copy fallback' : 'overlay'}: the layer lists as BuildKit's, and a RUN on top (unpacked layer) sees the same tree`, async () => {
      setOverlaySupport(store, fallback ? false : undefined)
      try {
        const made = await runStep(busybox, SCRIPT)
        expect(tarListing(store.blobs.blobPath(made.state.layers.at(-1)!.digest))).toEqual(RUN_LAYER)
        const seen = await runStep(made.state, LIST)
        expect(tarListing(store.blobs.blobPath(seen.state.layers.at(-1)!.digest))).toEqual([ETC]) // listing changes nothing else
        expectSeen(seen.stdout)
        // Deleting the raw-named entries: whiteouts with the same bytes, which the unpacker turns
        // into overlay whiteouts for the next step (or the copy fallback applies).
        const rm = await runStep(seen.state, `rm /nodes/bytes-* /nodes/dir-*/f*`)
        expect(tarListing(store.blobs.blobPath(rm.state.layers.at(-1)!.digest))).toEqual([
          ETC,
          'drwxr-xr-x 0/0 0 nodes/',
          '---------- 0/0 0 nodes/.wh.bytes-\\377\\376',
          'drwxr-xr-x 0/0 0 nodes/dir-\\377/',
          '---------- 0/0 0 nodes/dir-\\377/.wh.f\\376',
        ])
        const after = await runStep(rm.state, 'for f in /nodes/* /nodes/dir-*/*; do echo "name:$f"; done')
        expect(after.stdout.split('\n')).not.toContain('name:/nodes/bytes-\xff\xfe')
        expect(after.stdout).toContain('name:/nodes/ln-\xff')
        expect(after.stdout).toContain('name:/nodes/dir-\xff\n')
        expect(after.stdout).toContain('name:/nodes/dir-*/*\n') // the dir is empty now: the glob stays as written
      } finally {
        setOverlaySupport(store, undefined)
      }
    })
  }
})

describe('COPY from a context with the same kinds of entries', () => {
  it('keeps raw names, hard-linked symlinks, fifos and devices; a RUN on top sees them', async () => {
    const context = join(work, 'ctx')
    const src = join(context, 'src')
    mkdirSync(src, { recursive: true })
    const raw = (s: string) => Buffer.from(s, 'latin1')
    writeFileSync(join(src, 'a'), 'a\n')
    symlinkSync('a', join(src, 'sym'))
    linkSync(join(src, 'sym'), join(src, 'sym-hard')) // link(2) does not follow the symlink
    execFileSync('mkfifo', [join(src, 'fifo')])
    linkSync(join(src, 'fifo'), join(src, 'fifo-hard'))
    execFileSync('mknod', [join(src, 'x'), 'c', '511', '70000'])
    linkSync(join(src, 'x'), join(src, 'x-hard'))
    execFileSync('mknod', [join(src, 'big'), 'c', '4095', '1048575'])
    writeFileSync(Buffer.concat([raw(`${src}/bytes-`), Buffer.of(0xff, 0xfe)]), '')
    mkdirSync(Buffer.concat([raw(`${src}/dir-`), Buffer.of(0xff)]))
    writeFileSync(Buffer.concat([raw(`${src}/dir-`), Buffer.of(0xff), raw('/f'), Buffer.of(0xfe)]), 'hi\n')
    symlinkSync(Buffer.concat([raw('bytes-'), Buffer.of(0xff, 0xfe)]), Buffer.concat([raw(`${src}/ln-`), Buffer.of(0xff)]))
    expect(readdirSync(src, { encoding: 'buffer' }).some((n) => n.equals(Buffer.concat([raw('bytes-'), Buffer.of(0xff, 0xfe)])))).toBe(true)

    const b = base().copy('src', '/nodes/').copy('src/bytes-*', '/glob/').run(`${LIST} && for f in /glob/*; do echo "glob:$f"; done`)
    const { blob, stdout } = await build(b, context)
    // The same entries as BuildKit's RUN layer; COPY gives them the COPY mtime and root owner.
    expect(tarListing(blob(-3))).toEqual(BUILDKIT)
    expectSeen(stdout)
    // A wildcard source matches the raw name too.
    expect(tarListing(blob(-2))).toEqual(['drwxr-xr-x 0/0 0 glob/', '-rw-r--r-- 0/0 0 glob/bytes-\\377\\376'])
    expect(stdout.split('\n')).toContain('glob:/glob/bytes-\xff\xfe')
  })
})

describe('RUN on a bare rootfs: the mount points it needed', () => {
  it('FROM scratch + a busybox: the RUN layer keeps empty dev/ etc/ proc/ sys/, as buildah 1.28 and docker 20.10 both do', async () => {
    // The Dockerfile both peers built: their RUN layers hold dev/ etc/ proc/ sys/ and x (buildah's
    // also an empty etc/hostname and run/, docker's not: imagesmith follows docker there).
    const context = join(work, 'ctx-scratch')
    mkdirSync(join(context, 'rootfs'), { recursive: true })
    execFileSync('tar', ['-xf', busyboxRootfsTar(), '-C', join(context, 'rootfs'), 'bin/busybox', 'bin/sh'])
    const b = fromDockerfile('FROM scratch\nCOPY rootfs/ /\nRUN ["/bin/sh","-c","echo hi > /x"]\n').target
    const { blob } = await build(b, context)
    expect(tarListing(blob(-1))).toEqual([...STUBS, ...STUBS_AFTER, '-rw-r--r-- 0/0 3 x'])
  })
})
