export { image, scratch, ImageBuilder } from './builder/image-builder.js'
export type { AddOptions, CopyOptions, FromSource, HealthcheckOptions, RunMount, RunOptions, WordOptions } from './builder/options.js'
export type { Expandable } from './graph/expansion.js'
export type { ArgDecl } from './graph/nodes/config-node.js'
export type { BuildOptions, BuildResult, OutputSpec } from './pipeline/options.js'
export { defaultCacheDir } from './pipeline/resolve-options.js'
export {
  ErrorCodes,
  ImagesmithError,
  InvalidArgumentError,
  CopyError,
  UnsafeArchiveError,
  ExecError,
  isImagesmithError,
  type ErrorCode,
} from './errors.js'
export type { Graph, Vertex, AnyVertex, NodeKind, NodeMeta } from './graph/node.js'
export { toMermaid, toDot } from './graph/render.js'
export type { CacheKeyDoc, ProgressEvent, SecretSource, VertexRecord } from './solver/types.js'
export type { Descriptor, ImageConfig, ImageIndex, LayerRef, Manifest, Platform, HistoryEntry, ContainerConfig } from './oci/types.js'
export { MediaType, type Digest } from './oci/media-types.js'
export { ociArchiveExporter, type OciArchiveOptions } from './exporters/oci-archive.js'
export { ociLayoutExporter, type OciLayoutOptions } from './exporters/oci-layout.js'
export type { Exporter, ExportContext } from './exporters/exporter.js'
export { Store } from './store/store.js'
export type { StageDef, StageBase, Step, StepInput } from './graph/stage.js'
export type { CompileOptions } from './graph/compile.js'
export type { SpecByKind } from './graph/node.js'
export type { SourceSpec } from './graph/nodes/source-node.js'
export type { CopySpec } from './graph/nodes/copy-node.js'
export type { AddSpec } from './graph/nodes/add-node.js'
export type { RunSpec, MountSpec } from './graph/nodes/run-node.js'
export type { ConfigSpec } from './graph/nodes/config-node.js'
export type { BlobStore, BlobWriter } from './store/blob-store.js'
export type { CacheIndex } from './store/cache-index.js'
export type { Compression } from './layer/entry.js'
export type { HealthConfig } from './oci/types.js'
export type { FinalImage } from './oci/types.js'
export { parseReference, parseImageName, type ImageReference, type TaggedReference } from './reference/reference.js'
export { exporters, exportImage, isOutputType, type OutputType, type ExportSpec } from './exporters/table.js'
export type { ExportResult } from './exporters/exporter.js'
export { resolveImage, type BlobFetcher, type ResolveRequest, type ResolvedImage } from './sources/resolve.js'
export { toDockerfile, type PrintOptions } from './dockerfile/print.js'
export type { BaseImageRecord } from './pipeline/options.js'
export type { RegistryOptions, RegistryCredentials } from './registry/options.js'
export { fromDockerfile, platformArgs, type DockerfileImport, type FromDockerfileOptions } from './dockerfile/import.js'
