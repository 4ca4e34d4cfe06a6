// A local base image's reference and what each importer (oci-layout.ts, oci-archive.ts,
// docker-archive.ts) is handed; local.ts parses the one and dispatches the other.
import type { Platform } from '../oci/types.js'
import type { BlobStore } from '../store/blob-store.js'

export type LocalRef =
  | { readonly transport: 'oci'; readonly path: string; readonly tag?: string; readonly digest?: string }
  | { readonly transport: 'oci-archive'; readonly path: string; readonly tag?: string; readonly digest?: string }
  | { readonly transport: 'docker-archive'; readonly path: string; readonly tag?: string }

export interface LocalImportRequest {
  readonly ref: LocalRef
  /** The reference as written, for messages. */
  readonly refText: string
  readonly blobs: BlobStore
  readonly platform: Platform
  readonly signal?: AbortSignal
}
