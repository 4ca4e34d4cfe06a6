import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Artifact } from '../artifacts/artifact.js'
import { RegistryClient } from '../registry/client.js'
import { pushImage, pushIndex, type PushOptions } from '../registry/push.js'
import { pushSender } from '../registry/push-sender.js'
import type { ExportContext, Exporter } from './exporter.js'

export interface RegistryOutputOptions {
  /**
   * How blobs are uploaded: `monolithic` (POST, then one PUT with the body), `chunked` (PATCHes
   * with Content-Range, then PUT), or `auto` (monolithic unless the registry asks for chunks or
   * refuses it).
   * @default 'auto'
   */
  readonly upload?: 'auto' | 'monolithic' | 'chunked'
  /** Bytes per PATCH when uploading in chunks. @default 16777216 */
  readonly chunkSize?: number
}

/**
 * `--push`: every tag of the build goes to its registry. Blobs the repository has are skipped,
 * blobs of a base image from the same registry are mounted across repositories, the rest uploaded;
 * then each tag's manifest, byte for byte as built (the pushed digest is the built digest). An image
 * index pushes each image's manifest by digest, then the index under the tags.
 */
export const registryExporter: Exporter<RegistryOutputOptions> = {
  name: 'registry',
  async export(artifact: Artifact, opts: RegistryOutputOptions, ctx: ExportContext) {
    if (opts.upload !== undefined && !['auto', 'monolithic', 'chunked'].includes(opts.upload)) {
      throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, `invalid registry output upload mode ${JSON.stringify(opts.upload)}: auto, monolithic or chunked`, { upload: opts.upload })
    }
    if (opts.chunkSize !== undefined && (!Number.isInteger(opts.chunkSize) || opts.chunkSize < 1)) {
      throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, `invalid registry output chunkSize ${JSON.stringify(opts.chunkSize)}: a positive integer`, { chunkSize: opts.chunkSize })
    }
    if (!ctx.registry) throw new ImagesmithError(ErrorCodes.INTERNAL, 'the registry output was given no registry configuration', {})
    const client = new RegistryClient(ctx.registry)
    try {
      const push: PushOptions = {
        blobs: ctx.blobs,
        tags: ctx.tags,
        senderFor: (registry) => pushSender(client, registry),
        bases: ctx.bases,
        upload: { ...(opts.upload ? { mode: opts.upload } : {}), ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}) },
        signal: ctx.signal,
      }
      const r = artifact.kind === 'index' ? await pushIndex(artifact, push) : await pushImage(artifact, push)
      return { digest: r.digest, ref: r.refs[0], pushed: { blobs: r.blobs, bytes: r.bytes, mounted: r.mounted, skipped: r.skipped, tags: r.refs } }
    } finally {
      client.close()
    }
  },
}
