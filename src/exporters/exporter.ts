import type { Digest } from '../oci/media-types.js'
import type { Artifact } from '../artifacts/artifact.js'
import type { BlobStore } from '../store/blob-store.js'
import type { RegistryConfig } from '../registry/options.js'

export interface ExportContext {
  readonly blobs: BlobStore
  /** Image names as given (`app:1`); normalised by each exporter. */
  readonly tags: readonly string[]
  /** mtime (seconds) for files inside archives, so the same image gives the same archive bytes. */
  readonly epoch: number
  readonly signal?: AbortSignal
  /** The Docker Engine endpoint for the `docker` output when it names none ($DOCKER_HOST, resolved once). */
  readonly dockerHost?: string
  /** How registries are reached and authenticated (the `registry` output). */
  readonly registry?: RegistryConfig
  /** Registry bases of the build (`ref` resolved to `digest`): where a push mounts shared blobs from. */
  readonly bases?: readonly { readonly ref: string; readonly digest: Digest }[]
  /**
   * Annotations of index.json (`index`) and of the artifact's descriptor in it (`manifestDescriptor`: the
   * image's, or an index's), for outputs that write one.
   */
  readonly annotations?: { readonly index: Readonly<Record<string, string>>; readonly manifestDescriptor: Readonly<Record<string, string>> }
}

/** What an export produced: always the artifact's digest, and where it went. */
export interface ExportResult {
  /** The digest of the exported artifact's manifest: the image's, or the index's. */
  readonly digest: Digest
  /** The file or directory written, for outputs on disk. */
  readonly path?: string
  /** The reference pushed or loaded (`registry`, `docker` outputs). */
  readonly ref?: string
  /** What a push moved (`registry` output). */
  readonly pushed?: PushStats
}

/** Blob traffic of a push: `bytes` counts only what was uploaded (not mounted or skipped blobs). */
export interface PushStats {
  /** Blobs uploaded. */
  readonly blobs: number
  /** Bytes of blob content uploaded (manifests not counted). */
  readonly bytes: number
  /** Blobs cross-mounted from another repository on the same registry. */
  readonly mounted: number
  /** Blobs the registry already had in the target repository (HEAD said so). */
  readonly skipped: number
  /** Tags whose manifest was PUT. */
  readonly tags: readonly string[]
}

/**
 * One output format: one file here plus one line in table.ts (keyed by the output's `type`),
 * re-exported from index.ts. `opts` is the output spec the caller gave, `type` included. Every
 * exporter takes an image and an image index; one whose target cannot hold an index refuses it
 * with `INDEX_NOT_SUPPORTED`.
 */
export interface Exporter<O> {
  readonly name: string
  export(artifact: Artifact, opts: O, ctx: ExportContext): Promise<ExportResult>
}
