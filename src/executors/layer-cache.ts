import type { Digest } from '../oci/media-types.js'
import type { LayerRef } from '../oci/types.js'
import type { ExecContext } from '../solver/types.js'

/**
 * Returns the layer recorded under `key` if its blob is still in the store, else makes it and records it.
 * `key` must cover everything the layer's bytes depend on (spec, input content digests, epoch,
 * compression); a hit is then proven by content, never by timestamps.
 */
export async function cachedLayer(ctx: ExecContext, key: Digest, make: () => Promise<LayerRef>): Promise<{ layer: LayerRef; cached: boolean }> {
  if (!ctx.noCache) {
    const hit = await ctx.store.cache.lookup<LayerRef>(key)
    if (hit && (await ctx.store.blobs.has(hit.digest))) return { layer: hit, cached: true }
  }
  const layer = await make()
  await ctx.store.cache.record(key, layer)
  return { layer, cached: false }
}
