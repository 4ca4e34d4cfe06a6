import type { LayerRef } from '../oci/types.js'
import type { CacheKey, CacheKeyDoc, ExecContext } from '../solver/types.js'
import { digestOf } from '../util/canonical-json.js'

/** A cache index entry: the layer, and the document its key was hashed from. */
interface LayerCacheEntry {
  readonly layer: LayerRef
  readonly keyDoc: CacheKeyDoc
}

/**
 * Returns the layer recorded under the digest of `keyDoc` if its blob is still in the store, else
 * makes it and records it with the document. `keyDoc` must cover everything the layer's bytes
 * depend on (spec, input content digests, epoch, compression); a hit is then proven by content,
 * never by timestamps.
 */
export async function cachedLayer(
  ctx: ExecContext,
  keyDoc: CacheKeyDoc,
  make: () => Promise<LayerRef>,
): Promise<{ layer: LayerRef; cached: boolean; key: CacheKey }> {
  const key: CacheKey = { digest: digestOf(keyDoc), doc: keyDoc }
  if (!ctx.noCache) {
    // Entries of an older shape (a bare LayerRef) have no `layer`: a miss, rewritten below.
    const hit = await ctx.store.cache.lookup<Partial<LayerCacheEntry>>(key.digest)
    if (hit?.layer && (await ctx.store.blobs.has(hit.layer.digest))) return { layer: hit.layer, cached: true, key }
  }
  const layer = await make()
  const entry: LayerCacheEntry = { layer, keyDoc }
  await ctx.store.cache.record(key.digest, entry)
  return { layer, cached: false, key }
}
