import { ErrorCodes, ImagesmithError } from '../errors.js'
import { importLocalImage, parseLocalRef } from '../sources/local.js'
import type { ImageConfig } from '../oci/types.js'
import type { ResolvedImage } from '../sources/resolve.js'
import { parseReference } from '../reference/reference.js'
import type { Executor, ImageState } from '../solver/types.js'
import { DEFAULT_PATH, envMap } from './state.js'

/**
 * FROM: scratch, a local image (`oci:`, `oci-archive:`, `docker-archive:`) or a registry reference
 * (`debian`, `host:5000/a/b@sha256:…`), pulled through the build's {@link ExecContext.registry}.
 */
export const sourceExecutor: Executor<'source'> = {
  kind: 'source',
  async exec(vertex, _inputs, ctx) {
    const ref = vertex.spec.ref
    let config: ImageConfig
    let layers: ImageState['layers'] = []
    if (ref === 'scratch') {
      config = {
        architecture: ctx.platform.architecture,
        os: ctx.platform.os,
        ...(ctx.platform.variant ? { variant: ctx.platform.variant } : {}),
        config: {},
        rootfs: { type: 'layers', diff_ids: [] },
        history: [],
      }
    } else {
      const local = parseLocalRef(ref)
      let imported: ResolvedImage
      if (local) imported = await importLocalImage(local, ref, ctx.store.blobs, ctx.platform, ctx.signal)
      else {
        // A malformed name is the caller's mistake (INVALID_REFERENCE); a well-formed one is pulled.
        const parsed = parseReference(ref)
        if (!ctx.registry) {
          throw new ImagesmithError(ErrorCodes.UNKNOWN_FROM, `base image ${parsed.full} needs a registry, and this build has no registry client`, { reference: ref, normalized: parsed.full })
        }
        imported = await ctx.registry.pull(parsed, ctx.platform, ctx.store.blobs, ctx.signal)
      }
      config = imported.config
      layers = imported.layers
    }
    // BuildKit gives every Linux stage a PATH when its base has none.
    const env = envMap(config.config?.Env)
    const containerConfig = { ...(config.config ?? {}) }
    if (!env.has('PATH')) containerConfig.Env = [`PATH=${DEFAULT_PATH}`, ...(containerConfig.Env ?? [])]
    // ONBUILD triggers belong to the base's consumers; Docker drops them from the child's config.
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
