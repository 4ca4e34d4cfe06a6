import { createHash, hash } from 'node:crypto'
import type { LayerRef } from '../oci/types.js'
import type { CacheKey, CacheKeyDoc, ExecContext, ExecResult, LayerPlan, Prepared } from '../solver/types.js'
import { digestOf } from '../util/canonical-json.js'
import { isAscii } from '../util/names.js'
import { explainMiss, type FileMap } from './miss-reason.js'
import { formatPlatform } from '../oci/platform.js'
import type { InputName } from '../graph/node.js'
import { normalizePlatform } from '../oci/platform.js'
import type { CacheBackend, CacheRecord } from './backend.js'
import { LocalCacheBackend } from './local.js'

/** What a miss can be explained with beyond the key document (kept beside it, never hashed into the key). */
export interface MissDetail {
  /** What each file of a context copy contributed to the key, by path (bounded, see miss-reason.ts); short digests of it are kept on a miss. */
  readonly files?: FileMap
  /** Names of the ARGs in scope (RUN's env holds them too): a changed one is reported as an ARG. */
  readonly argNames?: readonly string[]
  /** What the step's other inputs are called (`COPY --from=build`): a changed one is named. */
  readonly inputs?: readonly InputName[]
  /**
   * Runs on a miss before anything here is read and before the layer is made: a key taken from a
   * summary (a COPY's tree record) is made in full here, with what `files` and the writer need.
   */
  readonly prepare?: () => Promise<void>
}

/**
 * What the step made the last time it missed in this store, handed to `make` on a miss: a writer may
 * reuse parts of it (a COPY hard-links the unchanged files of the previous snapshot).
 */
export interface PreviousBuild {
  readonly layer: LayerRef
  readonly keyDoc: CacheKeyDoc
  /** Whether the file of this name (a key of {@link MissDetail.files}) is the same as in that build. */
  readonly unchanged: (name: string) => boolean
}

/** The backend a context's layer steps go through: its own, else its store's. */
export function cacheOf(ctx: Pick<ExecContext, 'cache' | 'store'>): CacheBackend {
  return ctx.cache ?? new LocalCacheBackend(ctx.store)
}

export function isLayerPlan(p: Prepared): p is LayerPlan {
  return 'make' in p
}

/**
 * Settles what {@link Executor.prepare} gave: a layer step's layer from the cache or made
 * ({@link cachedLayer}), stacked by the plan; a result as it is. The plan is released either way.
 */
export async function execPlan(prepared: Prepared, ctx: ExecContext): Promise<ExecResult> {
  if (!isLayerPlan(prepared)) return prepared
  try {
    const { layer, cached, key, reason } = await cachedLayer(ctx, prepared.keyDoc, prepared.make, prepared.detail)
    return { state: prepared.finish(layer), cached, key, ...(reason !== undefined ? { reason } : {}) }
  } finally {
    await prepared.release?.()
  }
}

/**
 * Returns the layer the cache backend ({@link cacheOf}) has under the digest of `keyDoc`, else
 * makes it and records it with the document. `keyDoc` must cover everything the layer's bytes
 * depend on (spec, input content digests, epoch, compression); a hit is then proven by content,
 * never by timestamps. The key is reported ({@link ExecContext.onCacheKey}) before the backend is
 * asked and before anything is made.
 *
 * Every step also has a slot (its stage, its text and its op, nothing a rebuild changes) pointing at
 * the last key it had in this store; a miss is explained by diffing that key's document with this one
 * (when the backend keeps such a history, see {@link CacheBackend.history}).
 */
export async function cachedLayer(
  ctx: ExecContext,
  keyDoc: CacheKeyDoc,
  make: (previous?: PreviousBuild) => Promise<LayerRef>,
  detail: MissDetail = {},
): Promise<{ layer: LayerRef; cached: boolean; key: CacheKey; reason?: string }> {
  // Every layer is keyed by the platform it was made for: a layer made for amd64 never answers an
  // arm64 build, even when its bytes could not differ (a COPY), as BuildKit keys every vertex by it.
  keyDoc = { ...keyDoc, platform: formatPlatform(normalizePlatform(ctx.platform)) }
  const key: CacheKey = { digest: digestOf(keyDoc), doc: keyDoc }
  const step = ctx.step
  ctx.onCacheKey?.(key, step?.vertex)
  const backend = cacheOf(ctx)
  const history = backend.history
  const slotKey = step && history ? digestOf({ slot: 1, stage: step.stage ?? null, description: step.description, op: keyDoc.op ?? keyDoc.kind ?? null }) : undefined
  const filtered = step?.stage !== undefined && (ctx.noCacheFilter ?? []).includes(step.stage)
  const prevSlot = slotKey ? await history!.slot(slotKey) : undefined
  const pointSlot = async () => {
    if (slotKey && prevSlot?.key !== key.digest) await history!.pointSlot(slotKey, { key: key.digest, description: step!.description, ...(step!.stage !== undefined ? { stage: step!.stage } : {}) })
  }
  if (!ctx.noCache && !filtered) {
    const hit = await backend.lookup(key)
    if (hit) {
      await pointSlot()
      return { layer: hit, cached: true, key }
    }
  }
  await detail.prepare?.()
  // Compacted only on a miss: a hit never pays for the per-file map.
  const files = detail.files && compactFiles(detail.files)
  let reason: string
  let previous: PreviousBuild | undefined
  if (ctx.noCache) reason = 'no-cache: every step is rebuilt'
  else if (filtered) reason = `no-cache-filter: stage ${step!.stage}`
  else {
    const prev = prevSlot ? await history!.entry(prevSlot.key) : undefined
    const prevFiles = prevSlot && files ? await history!.files(prevSlot.key) : undefined
    reason = explainMiss(prev?.keyDoc, keyDoc, prevFiles, files, prevSlot?.key === key.digest, detail.argNames, detail.inputs)
    // The caller compares the previous key with its own, which has no platform yet: the same
    // platform's build only, its document as the caller wrote it.
    if (prev?.layer && prev.keyDoc && prevFiles && files && prev.keyDoc.platform === keyDoc.platform) {
      const { platform: _platform, ...callerDoc } = prev.keyDoc
      previous = { layer: prev.layer, keyDoc: callerDoc, unchanged: (name) => prevFiles[name] !== undefined && prevFiles[name] === files[name] }
    }
  }
  const layer = await make(previous)
  const entry: CacheRecord = { layer, keyDoc, ...(step ? { description: step.description } : {}), ...(step?.stage !== undefined ? { stage: step.stage } : {}) }
  if (files && history) await history.recordFiles(key.digest, files)
  await backend.record(key, entry)
  await pointSlot()
  return { layer, cached: false, key, reason }
}

/** 16 hex digits of sha256 per file: enough to tell a change, small enough for 50k files. */
function compactFiles(files: FileMap): FileMap {
  const out: Record<string, string> = {}
  // An ASCII value's latin1 bytes are its UTF-8: one-shot hash() then (no Hash object per file).
  for (const [p, v] of Object.entries(files)) out[p] = (isAscii(v) ? hash('sha256', v, 'hex') : createHash('sha256').update(v, 'latin1').digest('hex')).slice(0, 16)
  return out
}
