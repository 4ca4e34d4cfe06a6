/**
 * RUN-executor test fixtures shared by the suites that drive `runExecutor` directly: a base state
 * from a rootfs tarball, and the prelude of a child script that runs one step in its own process
 * (to be signalled, or run in a private mount namespace).
 */
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import { MediaType } from '../../src/oci/media-types.js'
import type { LayerRef } from '../../src/oci/types.js'
import type { ExecContext, ImageState, ProgressEvent } from '../../src/solver/types.js'
import type { Store } from '../../src/store/store.js'

/** An image state whose one uncompressed layer is the tarball at `path`, put into `store`. */
export async function baseFromTar(store: Store, path: string): Promise<ImageState> {
  const { digest, size } = await store.blobs.putStream(createReadStream(path))
  const layer: LayerRef = { digest, diffId: digest, size, mediaType: MediaType.OciLayer }
  return {
    config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [digest] }, history: [] },
    layers: [layer],
    args: [],
    cmdSet: false,
  }
}

/**
 * The context a suite runs single steps in: no cache, the fixed `created` time, the default network,
 * events to `emit`; `over` replaces any field.
 */
export function stepContext(store: Store, contextDir: string, emit: (e: ProgressEvent) => void, over: Partial<ExecContext> = {}): ExecContext {
  return {
    store,
    contextDir,
    epoch: 0,
    clampRunMtimes: false,
    created: '2024-01-01T00:00:00Z',
    platform: { os: 'linux', architecture: 'amd64' },
    noCache: true,
    compression: 'gzip',
    secrets: {},
    network: 'default',
    emit,
    ...over,
  }
}

/**
 * The top of a child `.mts` script: imports `Store` and `runExecutor` from this checkout and defines
 * `store`, `state` (on `layers`) and `ctx` (no cache, RUN output to stdout). The caller appends the
 * `runExecutor.exec(…)` call.
 */
export function stepScriptPrelude(storeRoot: string, layers: readonly LayerRef[]): string {
  return `import { Store } from ${JSON.stringify(join(process.cwd(), 'src/store/store.ts'))}
import { runExecutor } from ${JSON.stringify(join(process.cwd(), 'src/ops/run.ts'))}
const store = new Store(${JSON.stringify(storeRoot)})
const state = { config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } }, layers: ${JSON.stringify(layers)}, args: [], cmdSet: false }
const ctx = { store, contextDir: '/', epoch: 0, clampRunMtimes: false, created: '', platform: { os: 'linux', architecture: 'amd64' }, noCache: true, compression: 'gzip', secrets: {}, network: 'default', emit: (e) => { if (e.type === 'log') process.stdout.write(e.data) } }
`
}
