import type { Artifact } from '../artifacts/artifact.js'
import type { ExportContext, ExportResult, Exporter } from './exporter.js'
import { dockerExporter } from './docker.js'
import { ociArchiveExporter } from './oci-archive.js'
import { ociLayoutExporter } from './oci-layout.js'
import { registryExporter } from './registry.js'

/**
 * Every output type and its exporter. A new output (`registry`, `docker`) is one file and one
 * line here; the pipeline dispatches through this table and knows no exporter by name.
 */
export const exporters = Object.freeze({
  oci: ociArchiveExporter,
  'oci-layout': ociLayoutExporter,
  docker: dockerExporter,
  registry: registryExporter,
})

export type OutputType = keyof typeof exporters

export function isOutputType(type: unknown): type is OutputType {
  return typeof type === 'string' && Object.hasOwn(exporters, type)
}

/** An output spec as the caller gives it: `{ type, ...that exporter's options }`. */
export type ExportSpec = { readonly [K in OutputType]: { readonly type: K } & Parameters<(typeof exporters)[K]['export']>[1] }[OutputType]

/** Writes an image or an image index to the output `output.type` names. */
export function exportArtifact(artifact: Artifact, output: ExportSpec, ctx: ExportContext): Promise<ExportResult> {
  const exporter = exporters[output.type] as Exporter<ExportSpec>
  return exporter.export(artifact, output, ctx)
}

/** @deprecated the same as {@link exportArtifact}, which also takes an image index. */
export const exportImage = exportArtifact
