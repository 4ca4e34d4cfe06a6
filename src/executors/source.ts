import { ErrorCodes, ImagesmithError } from '../errors.js'
import { importLocalImage, parseLocalRef } from '../sources/local.js'
import type { ImageConfig } from '../oci/types.js'
import { parseReference } from '../reference/reference.js'
import type { Executor, ImageState } from '../solver/types.js'
import { DEFAULT_PATH, envMap } from './state.js'

/**
 * FROM: scratch or a local image. Registry references are the registry issue's job; until then they
 * fail with UNKNOWN_FROM and say which local forms work.
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
      if (!local) {
        // A malformed name is the caller's mistake (INVALID_REFERENCE); a well-formed one needs a registry.
        const parsed = parseReference(ref)
        throw new ImagesmithError(
          ErrorCodes.UNKNOWN_FROM,
          `unknown base image ${JSON.stringify(ref)} (${parsed.full}): use 'scratch', another builder, or a local image ` +
            `('oci-archive:PATH[:TAG]', 'oci:DIR[:TAG]', 'docker-archive:PATH[:NAME:TAG]'); registry pulls are not supported yet`,
          { reference: ref, normalized: parsed.full },
        )
      }
      const imported = await importLocalImage(local, ref, ctx.store.blobs, ctx.platform, ctx.signal)
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
