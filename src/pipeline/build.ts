import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import type { ImageBuilder } from '../builder/image-builder.js'
import { executors } from '../executors/registry.js'
import { ociArchiveExporter } from '../exporters/oci-archive.js'
import { ociLayoutExporter } from '../exporters/oci-layout.js'
import type { ExportContext } from '../exporters/exporter.js'
import { finalizeImage } from './finalize.js'
import { parseImageName } from '../reference/reference.js'
import { solve } from '../solver/solve.js'
import { Store } from '../store/store.js'
import type { BuildOptions, BuildResult, OutputSpec } from './options.js'
import { resolveBuildOptions } from './resolve-options.js'

export type { BuildOptions, BuildResult, OutputSpec } from './options.js'

/** The one execution gateway: compile → solve → finalize → export. */
export async function buildImage(builder: ImageBuilder, opts: BuildOptions = {}): Promise<BuildResult> {
  const resolved = resolveBuildOptions(opts)
  const tags = [...(opts.tags ?? [])]
  for (const t of tags) parseImageName(t) // bad tags fail before any work
  if (opts.output) validateOutput(opts.output)
  const graph = builder.graph({ buildArgs: opts.buildArgs })
  const store = new Store(resolved.cacheDir)
  await store.blobs.init()
  throwIfAborted(opts.signal)

  const { state, cacheHits } = await solve(
    graph,
    executors,
    {
      store,
      contextDir: resolved.contextDir,
      epoch: resolved.epoch,
      clampRunMtimes: resolved.clampRunMtimes,
      created: resolved.created,
      platform: resolved.platform,
      noCache: opts.noCache ?? false,
      compression: opts.compression ?? 'gzip',
      secrets: opts.secrets ?? {},
      network: opts.network ?? 'default',
      runtime: opts.runtime,
      signal: opts.signal,
      emit: opts.onProgress ?? (() => {}),
    },
    { concurrency: opts.concurrency },
  )
  throwIfAborted(opts.signal)
  const image = await finalizeImage(store.blobs, state.config, state.layers)

  let output: string | undefined
  if (opts.output) {
    const ctx: ExportContext = { blobs: store.blobs, tags, epoch: resolved.epoch, signal: opts.signal }
    const res =
      opts.output.type === 'oci'
        ? await ociArchiveExporter.export(image, { dest: opts.output.dest }, ctx)
        : await ociLayoutExporter.export(image, { dest: opts.output.dest }, ctx)
    output = res.path
  }
  return {
    digest: image.manifestDigest,
    manifest: image.manifest,
    config: image.config,
    configDigest: image.configDigest,
    layers: image.layers,
    cacheHits,
    output,
  }
}

function validateOutput(output: OutputSpec): void {
  if (!output || (output.type !== 'oci' && output.type !== 'oci-layout') || typeof output.dest !== 'string' || output.dest === '') {
    throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, `invalid output ${JSON.stringify(output)}: expected { type: 'oci' | 'oci-layout', dest }`, { output })
  }
}
