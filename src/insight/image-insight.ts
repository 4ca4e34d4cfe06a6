/** Reads an image's layers one after another (each streamed once) into what {@link analyzeLayers} and the diff need. */
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Digest } from '../oci/media-types.js'
import type { InspectedImage } from '../sources/inspect.js'
import { analyzeLayers, layerSteps, type ImageInsight, type LayerInput } from './analyze.js'
import type { ImageSource } from './image-source.js'
import { MAX_IMAGE_ENTRIES, readLayerFiles } from './layer-files.js'

/** The layers of `image` read from `src`, with the step that made each; `hash` digests file bodies too. */
export async function readImageLayers(src: ImageSource, image: InspectedImage, opts: { hash?: boolean } = {}): Promise<LayerInput[]> {
  const steps = layerSteps(image.config.history, image.manifest.layers.length)
  const out: LayerInput[] = []
  let entries = 0
  for (const [i, l] of image.manifest.layers.entries()) {
    const blob = src.openBlob(l.digest as Digest)
    if (!blob) throw new ImagesmithError(ErrorCodes.BLOB_NOT_FOUND, `layer ${l.digest} of ${image.name ?? image.manifestDigest} is not in the image`, { digest: l.digest })
    const { files, tarBytes } = await readLayerFiles(blob, l.digest, { ...opts, maxEntries: MAX_IMAGE_ENTRIES - entries })
    entries += files.length
    const step = steps[i]
    out.push({ digest: l.digest, mediaType: l.mediaType, compressedSize: l.size, tarBytes, files, ...(step !== undefined ? { step } : {}) })
  }
  return out
}

export async function imageInsight(src: ImageSource, image: InspectedImage): Promise<ImageInsight> {
  return analyzeLayers(await readImageLayers(src, image))
}
