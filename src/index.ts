export { image, scratch, ImageBuilder } from './builder/image-builder.js'
export type { AddOptions, CopyOptions, FromSource, HealthcheckOptions, RunMount, RunOptions } from './builder/options.js'
export type { BuildOptions, BuildResult, OutputSpec } from './build/options.js'
export { defaultCacheDir } from './build/resolve-options.js'
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
export type { ProgressEvent, SecretSource } from './solver/types.js'
export type { Descriptor, ImageConfig, ImageIndex, LayerRef, Manifest, Platform, HistoryEntry, ContainerConfig } from './oci/types.js'
export { MediaType, type Digest } from './oci/media-types.js'
export { ociArchiveExporter, type OciArchiveOptions } from './exporters/oci-archive.js'
export { ociLayoutExporter, type OciLayoutOptions } from './exporters/oci-layout.js'
export type { Exporter, ExportContext } from './exporters/exporter.js'
export { Store } from './store/store.js'
