import type { Executor, ImageState } from '../solver/types.js'
import { loadBase } from '../sources/base.js'
import { DEFAULT_PATH, envMap } from './state.js'

/** FROM: the base's config and layers, with a PATH and without the base's ONBUILD triggers. */
export const sourceExecutor: Executor<'source'> = {
  kind: 'source',
  async exec(vertex, _inputs, ctx) {
    const ref = vertex.spec.ref
    const { config, layers } = await (ctx.resolveBase ? ctx.resolveBase(ref, ctx.platform) : loadBase(ref, ctx))
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
