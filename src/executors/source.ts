import { inSlot } from '../solver/scheduler.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { importLocalImage, parseLocalRef } from '../sources/local.js'
import type { ImageConfig } from '../oci/types.js'
import type { ResolvedImage } from '../sources/resolve.js'
import { parseReference } from '../reference/reference.js'
import type { BaseImage, ExecContext, Executor, ImageState } from '../solver/types.js'
import { DEFAULT_PATH, envMap } from './state.js'

/**
 * Reads a FROM reference: scratch, a local image (`oci:`, `oci-archive:`, `docker-archive:`) or a
 * registry reference (`debian`, `host:5000/a/b@sha256:…`), pulled through the build's {@link ExecContext.registry}.
 */
export async function loadBase(ref: string, ctx: Pick<ExecContext, 'store' | 'platform' | 'signal' | 'registry' | 'limits'>): Promise<BaseImage> {
  if (ref === 'scratch') {
    const config: ImageConfig = {
      architecture: ctx.platform.architecture,
      os: ctx.platform.os,
      ...(ctx.platform.variant ? { variant: ctx.platform.variant } : {}),
      config: {},
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    }
    return { config, layers: [] }
  }
  const local = parseLocalRef(ref)
  let imported: ResolvedImage
  if (local) imported = await importLocalImage(local, ref, ctx.store.blobs, ctx.platform, ctx.signal)
  else {
    // A malformed name is the caller's mistake (INVALID_REFERENCE); a well-formed one is pulled.
    const parsed = parseReference(ref)
    if (!ctx.registry) {
      throw new ImagesmithError(ErrorCodes.UNKNOWN_FROM, `base image ${parsed.full} needs a registry, and this build has no registry client`, { reference: ref, normalized: parsed.full })
    }
    imported = await inSlot(ctx.limits, 'net', () => ctx.registry!.pull(parsed, ctx.platform, ctx.store.blobs, ctx.signal), ctx.signal)
  }
  return { config: imported.config, layers: imported.layers }
}

/** One resolution per reference for the whole build (the pipeline's ONBUILD pass and FROM share it). */
export function baseResolver(ctx: Pick<ExecContext, 'store' | 'platform' | 'signal' | 'registry'>): (ref: string) => Promise<BaseImage> {
  const seen = new Map<string, Promise<BaseImage>>()
  return (ref) => {
    let p = seen.get(ref)
    if (!p) {
      p = loadBase(ref, ctx)
      seen.set(ref, p)
      // A failed resolution is reported by whoever awaits it; a retry in the same build gets a fresh try.
      p.catch(() => seen.delete(ref))
    }
    return p
  }
}

/** FROM: the base's config and layers, with a PATH and without the base's ONBUILD triggers. */
export const sourceExecutor: Executor<'source'> = {
  kind: 'source',
  async exec(vertex, _inputs, ctx) {
    const ref = vertex.spec.ref
    const { config, layers } = await (ctx.resolveBase ? ctx.resolveBase(ref) : loadBase(ref, ctx))
    // BuildKit gives every Linux stage a PATH when its base has none.
    const env = envMap(config.config?.Env)
    const containerConfig = { ...(config.config ?? {}) }
    if (!env.has('PATH')) containerConfig.Env = [`PATH=${DEFAULT_PATH}`, ...(containerConfig.Env ?? [])]
    // The triggers run as steps right after this vertex (the pipeline put them in the graph, see
    // graph/compile); like Docker, the child's config does not keep them.
    delete (containerConfig as { OnBuild?: unknown }).OnBuild
    const state: ImageState = {
      config: { ...config, config: containerConfig, history: config.history ?? [] },
      layers,
      args: [],
      cmdSet: false,
    }
    return { state, cached: false }
  },
}
