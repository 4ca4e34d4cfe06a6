import type { FinalImage } from '../oci/types.js'
import type { BlobStore } from '../store/blob-store.js'

export interface ExportContext {
  readonly blobs: BlobStore
  /** Image names as given (`app:1`); normalised by each exporter. */
  readonly tags: readonly string[]
  /** mtime (seconds) for files inside archives, so the same image gives the same archive bytes. */
  readonly epoch: number
  readonly signal?: AbortSignal
}

/** One output format. Adding one means one file here, re-exported from index.ts. */
export interface Exporter<O> {
  readonly name: string
  export(image: FinalImage, opts: O, ctx: ExportContext): Promise<{ readonly path: string }>
}
