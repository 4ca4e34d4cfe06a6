/**
 * A context COPY with a probe of its tree (context/tree-probe.ts), as the local driver runs it: a
 * no-op rebuild takes its key from the listing's record without walking the tree; any change shows.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import { copyExecutor } from '../../src/ops/copy.js'
import { probeTree } from '../../src/context/tree-probe.js'
import type { CopySpec } from '../../src/graph/nodes/copy-node.js'
import type { Vertex } from '../../src/graph/node.js'
import type { ExecContext, ImageState } from '../../src/solver/types.js'
import { Store } from '../../src/store/store.js'
import { clockAhead } from '../helpers/clock.js'
import { listLayerEntries } from '../helpers/layer-listing.js'

// Counts the context walks (addTree), passing each to the real one.
const walks = vi.hoisted(() => ({ n: 0 }))
vi.mock('../../src/context/collect.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/context/collect.js')>()
  return { ...real, addTree: (...a: Parameters<typeof real.addTree>) => { walks.n++; return real.addTree(...a) } }
})

let tmp: string
let context: string
let store: Store

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'imagesmith-copy-probe-'))
  context = join(tmp, 'context')
  mkdirSync(join(context, 'd'), { recursive: true })
  writeFileSync(join(context, 'd', 'a'), 'aaaa')
  writeFileSync(join(context, 'd', 'b'), 'bbbb')
  store = new Store(join(tmp, 'store'))
  walks.n = 0
})

afterEach(() => {
  rmSync(tmp, { recursive: true, force: true })
})

const scratch: ImageState = {
  config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
  layers: [], args: [], cmdSet: false,
}

const vertex: Vertex<'copy'> = { id: `sha256:${'0'.repeat(64)}`, kind: 'copy', spec: { sources: ['d'], dest: '/d/', fromInput: false, exclude: [], link: false } satisfies CopySpec, inputs: [], meta: { description: 'COPY d /d/' } }

/** One build's COPY, with a listing taken for it as the driver takes one per build; the clock 10 s on, so every file is settled. */
async function build(extra: Partial<ExecContext> = {}) {
  return clockAhead(10_000, async () => {
    const probe = probeTree(context)
    const ctx: ExecContext = {
      store, contextDir: context, epoch: 1_700_000_000, clampRunMtimes: false, created: '2023-11-14T22:13:20Z',
      platform: { os: 'linux', architecture: 'amd64' }, noCache: false, compression: 'gzip', secrets: {}, network: 'default',
      emit: () => {}, contextProbe: () => probe, ...extra,
    }
    const r = await copyExecutor.exec(vertex, [scratch], ctx)
    const layer = r.state.layers.at(-1)!
    return { cached: r.cached, layer, files: await listLayerEntries(store.blobs, layer) }
  })
}

describe('COPY with a probe of the context', () => {
  it('takes a no-op rebuild’s key from the listing’s record without walking the tree', async () => {
    const first = await build()
    expect(first.cached).toBe(false)
    expect(walks.n).toBe(1)
    const again = await build()
    expect(again.cached).toBe(true)
    expect(again.layer.digest).toBe(first.layer.digest)
    expect(walks.n).toBe(1)
  })

  it('sees an edit that keeps size and mtime, and a file added where the COPY does not read', async () => {
    const first = await build()
    const st = statSync(join(context, 'd', 'a'))
    writeFileSync(join(context, 'd', 'a'), 'AAAA')
    utimesSync(join(context, 'd', 'a'), st.atime, st.mtime)
    const edited = await build()
    expect(edited.cached).toBe(false)
    expect(edited.files.get('d/a')!.data).toBe('AAAA')
    expect(walks.n).toBe(2)
    // A file the COPY does not take changes the listing: the walk runs, finds the same files, and
    // the step hits the cache.
    writeFileSync(join(context, 'other'), 'x')
    const unrelated = await build()
    expect(unrelated.cached).toBe(true)
    expect(unrelated.layer.digest).toBe(edited.layer.digest)
    expect(walks.n).toBe(3)
    expect(first.layer.digest).not.toBe(edited.layer.digest)
  })

  it('a record that names other bytes fails the step with SOURCE_CHANGED and is dropped; the next build is right', async () => {
    const first = await build()
    const statDir = join(store.root, 'statcache')
    const records = readdirSync(statDir).filter((n) => n.startsWith('tree-'))
    expect(records.length).toBe(2) // the walk's and the listing's
    for (const r of records) writeFileSync(join(statDir, r), JSON.stringify({ content: `sha256:${'e'.repeat(64)}` }))
    await expect(build()).rejects.toMatchObject({ code: ErrorCodes.SOURCE_CHANGED })
    const rebuilt = await build()
    expect(rebuilt.layer.digest).toBe(first.layer.digest)
    expect(rebuilt.cached).toBe(true)
  })

  it('a listing of another directory (a named context’s COPY) is not used', async () => {
    const other = mkdtempSync(join(tmp, 'other-'))
    const probe = probeTree(other)
    await build({ contextProbe: () => probe })
    await build({ contextProbe: () => probe })
    expect(walks.n).toBe(2)
  })
})
