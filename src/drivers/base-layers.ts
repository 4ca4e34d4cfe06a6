import type { Graph } from '../graph/node.js'
import type { Digest } from '../oci/media-types.js'
import type { LayerRef, Platform } from '../oci/types.js'
import type { BaseImage } from '../solver/types.js'

/**
 * How many leading layers of an output's image are its base image's: the FROM that the output
 * step's chain of states starts at (`inputs[0]` back to the `source` vertex; a `FROM stage` is that
 * stage's chain), resolved again through the build's resolver (one resolution per reference and
 * platform, so this reads nothing new), counted by digest as long as the image's layers match it.
 */
export async function baseLayerCount(
  graph: Graph,
  vertex: Digest,
  platform: Platform,
  layers: readonly LayerRef[],
  resolveBase: (ref: string, platform?: Platform) => Promise<BaseImage>,
): Promise<number> {
  const byId = new Map(graph.vertices.map((v) => [v.id, v]))
  let v = byId.get(vertex)
  // Bounded by the graph: a chain longer than it has a cycle, which a content-addressed graph cannot.
  for (let steps = 0; v && v.kind !== 'source' && steps <= graph.vertices.length; steps++) v = v.inputs[0] ? byId.get(v.inputs[0]) : undefined
  if (!v || v.kind !== 'source') return 0
  const base = await resolveBase((v.spec as { ref: string }).ref, v.platform ?? platform)
  let n = 0
  while (n < base.layers.length && n < layers.length && base.layers[n]!.digest === layers[n]!.digest) n++
  return n
}
