/**
 * Entitlements are the build's to grant, so the pipeline checks them for the whole graph before any
 * step runs, cached or not (BuildKit's ValidateEntitlements): a step the build may not run fails
 * even when its layer is in the cache.
 */
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Graph, Vertex } from '../graph/node.js'

/** ENTITLEMENT_REQUIRED unless the build allows what the step needs (`network.host`, `security.insecure`). */
export function requireEntitlements(vertex: Vertex<'run'>, ctx: { readonly allow?: readonly string[] }): void {
  const need = [...(vertex.spec.network === 'host' ? ['network.host'] : []), ...(vertex.spec.security === 'insecure' ? ['security.insecure'] : [])]
  for (const entitlement of need) {
    if (ctx.allow?.includes(entitlement)) continue
    const step = vertex.meta.description
    throw new ImagesmithError(
      ErrorCodes.ENTITLEMENT_REQUIRED,
      `${step} needs the ${entitlement} entitlement, which this build does not allow (allow: ['${entitlement}'], --allow ${entitlement})`,
      { entitlement, step, vertex: vertex.id },
    )
  }
}

/** Every RUN step's entitlements, in graph order: the first one missing fails. */
export function requireGraphEntitlements(graph: Graph, allow: readonly string[] | undefined): void {
  for (const v of graph.vertices) if (v.kind === 'run') requireEntitlements(v as Vertex<'run'>, { allow })
}
