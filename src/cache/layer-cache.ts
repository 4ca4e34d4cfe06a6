import { createHash } from 'node:crypto'
import type { LayerRef } from '../oci/types.js'
import type { CacheKey, CacheKeyDoc, ExecContext } from '../solver/types.js'
import { digestOf } from '../util/canonical-json.js'
import { explainMiss, type FileMap } from './miss-reason.js'
import { formatPlatform } from '../oci/platform.js'
import type { InputName } from '../graph/node.js'
import { normalizePlatform } from '../sources/platform-match.js'

/** A cache index entry: the layer, and the document its key was hashed from. */
interface LayerCacheEntry {
  readonly layer: LayerRef
  readonly keyDoc: CacheKeyDoc
  /** The step that made it (presentation, for `imagesmith cache ls`; never in the key). */
  readonly description?: string
  readonly stage?: string
}

/** The last key recorded for a step's slot (stage, step text, op): what a later miss is compared with. */
interface SlotEntry {
  readonly key: string
  /** The step (presentation, for `imagesmith cache ls`). */
  readonly description?: string
  readonly stage?: string
}

/** What a miss can be explained with beyond the key document (kept beside it, never hashed into the key). */
export interface MissDetail {
  /** What each file of a context copy contributed to the key, by path (bounded, see miss-reason.ts); short digests of it are kept on a miss. */
  readonly files?: FileMap
  /** Names of the ARGs in scope (RUN's env holds them too): a changed one is reported as an ARG. */
  readonly argNames?: readonly string[]
  /** What the step's other inputs are called (`COPY --from=build`): a changed one is named. */
  readonly inputs?: readonly InputName[]
}

/**
 * Returns the layer recorded under the digest of `keyDoc` if its blob is still in the store, else
 * makes it and records it with the document. `keyDoc` must cover everything the layer's bytes
 * depend on (spec, input content digests, epoch, compression); a hit is then proven by content,
 * never by timestamps.
 *
 * Every step also has a slot (its stage, its text and its op, nothing a rebuild changes) pointing at
 * the last key it had in this store; a miss is explained by diffing that key's document with this one.
 */
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
  const slotKey = step ? digestOf({ slot: 1, stage: step.stage ?? null, description: step.description, op: keyDoc.op ?? keyDoc.kind ?? null }) : undefined
  const filesKey = (k: string) => digestOf({ files: k })
  const filtered = step?.stage !== undefined && (ctx.noCacheFilter ?? []).includes(step.stage)
  const prevSlot = slotKey ? await ctx.store.cache.lookup<SlotEntry>(slotKey) : undefined
  const pointSlot = async () => {
    if (slotKey && prevSlot?.key !== key.digest) await ctx.store.cache.record(slotKey, { key: key.digest, description: step!.description, ...(step!.stage !== undefined ? { stage: step!.stage } : {}) } satisfies SlotEntry)
  }
  if (!ctx.noCache && !filtered) {
    // Entries of an older shape (a bare LayerRef) have no `layer`: a miss, rewritten below.
    const hit = await ctx.store.cache.lookup<Partial<LayerCacheEntry>>(key.digest)
    if (hit?.layer && (await ctx.store.blobs.has(hit.layer.digest))) {
      await pointSlot()
      return { layer: hit.layer, cached: true, key }
    }
  }
  // Compacted only on a miss: a hit never pays for the per-file map.
  const files = detail.files && compactFiles(detail.files)
  let reason: string
  let previous: PreviousBuild | undefined
  if (ctx.noCache) reason = 'no-cache: every step is rebuilt'
  else if (filtered) reason = `no-cache-filter: stage ${step!.stage}`
  else {
    const prev = prevSlot ? await ctx.store.cache.lookup<Partial<LayerCacheEntry>>(prevSlot.key) : undefined
    const prevFiles = prevSlot && files ? await ctx.store.cache.lookup<FileMap>(filesKey(prevSlot.key)) : undefined
    reason = explainMiss(prev?.keyDoc, keyDoc, prevFiles, files, prevSlot?.key === key.digest, detail.argNames, detail.inputs)
    // The caller compares the previous key with its own, which has no platform yet: the same
    // platform's build only, its document as the caller wrote it.
    if (prev?.layer && prev.keyDoc && prevFiles && files && prev.keyDoc.platform === keyDoc.platform) {
      const { platform: _platform, ...callerDoc } = prev.keyDoc
      previous = { layer: prev.layer, keyDoc: callerDoc, unchanged: (name) => prevFiles[name] !== undefined && prevFiles[name] === files[name] }
    }
  }
  const layer = await make(previous)
  const entry: LayerCacheEntry = { layer, keyDoc, ...(step ? { description: step.description } : {}), ...(step?.stage !== undefined ? { stage: step.stage } : {}) }
  if (files) await ctx.store.cache.record(filesKey(key.digest), files)
  await ctx.store.cache.record(key.digest, entry)
  await pointSlot()
  return { layer, cached: false, key, reason }
}

/** 16 hex digits of sha256 per file: enough to tell a change, small enough for 50k files. */
function compactFiles(files: FileMap): FileMap {
  const out: Record<string, string> = {}
  for (const [p, v] of Object.entries(files)) out[p] = createHash('sha256').update(v, 'latin1').digest('hex').slice(0, 16)
  return out
}
