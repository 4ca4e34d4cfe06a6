import type { HistoryEntry, ImageConfig, LayerRef } from '../oci/types.js'
import type { ExecContext, ImageState } from '../solver/types.js'

/** Appends a metadata-only step: new config, an `empty_layer` history entry (unless `createdBy` is null). */
export function withConfig(
  state: ImageState,
  ctx: ExecContext,
  createdBy: string | null,
  change: (config: ImageConfig['config']) => ImageConfig['config'],
  extra: Partial<Pick<ImageState, 'args' | 'cmdSet'>> & { author?: string } = {},
): ImageState {
  const history: HistoryEntry[] = [...(state.config.history ?? [])]
  if (createdBy !== null) history.push({ created: ctx.created, created_by: createdBy, empty_layer: true })
  const config: ImageConfig = {
    ...state.config,
    created: ctx.created,
    ...(extra.author !== undefined ? { author: extra.author } : {}),
    config: change(state.config.config),
    history,
  }
  return { config, layers: state.layers, args: extra.args ?? state.args, cmdSet: extra.cmdSet ?? state.cmdSet }
}

/** Appends a layer-producing step: the layer, its diffID in rootfs and a history entry. */
export function withLayer(state: ImageState, ctx: ExecContext, layer: LayerRef, createdBy: string): ImageState {
  const config: ImageConfig = {
    ...state.config,
    created: ctx.created,
    rootfs: { type: 'layers', diff_ids: [...state.config.rootfs.diff_ids, layer.diffId] },
    history: [...(state.config.history ?? []), { created: ctx.created, created_by: createdBy }],
  }
  return { ...state, config, layers: [...state.layers, layer] }
}

/** Env of the image as a map, in order. */
export function envMap(env: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>()
  for (const kv of env ?? []) {
    const i = kv.indexOf('=')
    if (i < 0) m.set(kv, '')
    else m.set(kv.slice(0, i), kv.slice(i + 1))
  }
  return m
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
