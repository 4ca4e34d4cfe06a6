/**
 * Size budgets of a build (`build({ budget })`, `--budget`): the image's compressed size, the bytes
 * its layers ship but later layers hide, and its layer count. Layers the build wrote are weighed by
 * the entry records their writer kept (store/layer-summary.ts), so nothing is read again; a base
 * image's layers, which no writer of this build saw, are read once and recorded the same way.
 */
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { ImageConfig, LayerRef } from '../oci/types.js'
import type { BlobStore } from '../store/blob-store.js'
import { readLayerSummary, writeLayerSummary } from '../store/layer-summary.js'
import { analyzeLayers, layerSteps, type LayerInput } from './analyze.js'
import { layerFileOf, rawPathOf, readLayerFiles, type LayerFile } from './layer-files.js'

export interface Budget {
  /** Most bytes the image's layers may take compressed (what a pull downloads). */
  readonly size?: number
  /** Most bytes of file versions that a later layer deletes or overwrites. */
  readonly wasted?: number
  /** Most layers. */
  readonly layers?: number
}

/** Paths or layers a BUDGET_EXCEEDED error names. */
const WORST = 5

const mb = (n: number) => `${(n / 1e6).toFixed(2)}MB`
const stepText = (s: string | undefined) => (s ?? '(unknown step)').replace(/ # buildkit$/, '')

/** Throws BUDGET_EXCEEDED for the first budget `image` breaks, naming its worst paths or layers and their steps. */
export async function checkBudget(budget: Budget, image: { readonly layers: readonly LayerRef[]; readonly config: ImageConfig }, blobs: BlobStore): Promise<void> {
  const steps = layerSteps(image.config.history, image.layers.length)
  if (budget.layers !== undefined && image.layers.length > budget.layers) {
    throw new ImagesmithError(ErrorCodes.BUDGET_EXCEEDED, `the image has ${image.layers.length} layers, over the budget of ${budget.layers}`, {
      budget: 'layers', limit: budget.layers, actual: image.layers.length, steps: steps.map(stepText),
    })
  }
  const size = image.layers.reduce((s, l) => s + l.size, 0)
  if (budget.size !== undefined && size > budget.size) {
    const worst = image.layers.map((l, i) => ({ layer: i, size: l.size, step: stepText(steps[i]) })).sort((a, b) => b.size - a.size).slice(0, WORST)
    throw new ImagesmithError(ErrorCodes.BUDGET_EXCEEDED, `the image's layers take ${mb(size)} compressed, over the budget of ${mb(budget.size)}; largest: ${worst.map((w) => `${mb(w.size)} ${w.step}`).join('; ')}`, {
      budget: 'size', limit: budget.size, actual: size, worst,
    })
  }
  if (budget.wasted === undefined) return
  const inputs: LayerInput[] = []
  for (const [i, l] of image.layers.entries()) {
    const step = steps[i]
    inputs.push({ digest: l.digest, mediaType: l.mediaType, compressedSize: l.size, tarBytes: 0, files: await layerFiles(blobs, l.digest), ...(step !== undefined ? { step } : {}) })
  }
  const insight = analyzeLayers(inputs)
  if (insight.wastedBytes <= budget.wasted) return
  const worst = insight.wasted.slice(0, WORST).map((w) => ({ path: `/${w.path}`, size: w.size, how: w.how, addedBy: stepText(w.addedBy.step), hiddenBy: stepText(w.hiddenBy.step) }))
  throw new ImagesmithError(
    ErrorCodes.BUDGET_EXCEEDED,
    `${mb(insight.wastedBytes)} of the image is hidden by later layers, over the wasted budget of ${mb(budget.wasted)}: ${worst.map((w) => `${w.path} ${mb(w.size)} (added by ${w.addedBy}, ${w.how} by ${w.hiddenBy})`).join('; ')}`,
    { budget: 'wasted', limit: budget.wasted, actual: insight.wastedBytes, worst },
  )
}

async function layerFiles(blobs: BlobStore, digest: Digest): Promise<LayerFile[]> {
  const record = await readLayerSummary(blobs.root, digest)
  if (record) return record.flatMap(([path, type, size, mode, uid, gid]) => layerFileOf(path, type, size, mode, uid, gid) ?? [])
  const { files } = await readLayerFiles(blobs.open(digest), digest)
  await writeLayerSummary(blobs.root, digest, files.map((f) => [rawPathOf(f), f.kind, f.size, f.mode, f.uid, f.gid] as const))
  return files
}
