import { cpuSlotOf } from '../solver/scheduler.js'
import { EntrySet } from '../context/collect.js'
import { historyText } from '../graph/instruction-text.js'
import { writeLayer } from '../layer/write-layer.js'
import type { ExecContext, ImageState, Prepared } from '../solver/types.js'
import { readImageFile } from './image-file.js'
import { addDestDirs, resolveDest } from './placement.js'
import { withConfig, withLayer } from './state.js'
import { resolveUser } from './users.js'

/**
 * WORKDIR as BuildKit runs it: the directory (and missing parents) is made, 0755 and owned by the
 * current USER, in a layer of its own. When it already exists in the image nothing changes on
 * disk, and the step stays metadata only (`empty_layer`), as BuildKit's exporter records an empty diff:
 * then the result, else the layer step.
 */
export async function applyWorkdir(state: ImageState, ctx: ExecContext, wd: string): Promise<Prepared> {
  const createdBy = historyText('config', { op: 'workdir', path: wd }, { workdir: wd })!
  const setWd = (s: ImageState) => withConfig(s, ctx, createdBy, (c) => ({ ...c, WorkingDir: wd }))
  if (wd === '/') return { state: setWd(state), cached: false }
  const dest = await resolveDest(ctx, state, wd, false)
  if (dest.existsDir) return { state: setWd(state), cached: false }

  const user = state.config.config.User ?? ''
  let owner = { uid: 0, gid: 0 }
  if (user !== '') {
    const passwd = (await readImageFile(ctx.store, state.layers, '/etc/passwd', ctx.signal))?.toString('utf8')
    const group = (await readImageFile(ctx.store, state.layers, '/etc/group', ctx.signal))?.toString('utf8')
    const r = resolveUser(user, passwd, group)
    owner = { uid: r.uid, gid: r.gid }
  }
  const set = new EntrySet()
  addDestDirs(set, dest, owner, ctx.epoch, true)
  const entries = set.finalize()
  return {
    keyDoc: { v: 1, op: 'workdir', entries, compression: ctx.compression },
    make: () => writeLayer(entries, ctx.store.blobs, { compression: ctx.compression, signal: ctx.signal, ...cpuSlotOf(ctx.limits, ctx.signal) }),
    finish: (layer) => {
      const withDir = withLayer(state, ctx, layer, createdBy)
      return { ...withDir, config: { ...withDir.config, config: { ...withDir.config.config, WorkingDir: wd } } }
    },
  }
}
