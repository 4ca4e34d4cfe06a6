import type { Digest } from './media-types.js'

export interface Descriptor {
  readonly mediaType: string
  readonly digest: Digest
  readonly size: number
  readonly annotations?: Readonly<Record<string, string>>
  readonly platform?: Platform
}

export interface Platform {
  readonly os: string
  readonly architecture: string
  readonly variant?: string
}

export interface Manifest {
  readonly schemaVersion: 2
  readonly mediaType: string
  readonly config: Descriptor
  readonly layers: readonly Descriptor[]
  readonly annotations?: Readonly<Record<string, string>>
}

export interface ImageIndex {
  readonly schemaVersion: 2
  readonly mediaType?: string
  readonly manifests: readonly Descriptor[]
  readonly annotations?: Readonly<Record<string, string>>
}

export interface HealthConfig {
  readonly Test: readonly string[]
  /** nanoseconds, as Docker stores them */
  readonly Interval?: number
  readonly Timeout?: number
  readonly StartPeriod?: number
  readonly StartInterval?: number
  readonly Retries?: number
}

/**
 * The runtime part of an image config. Field names are Docker's: the OCI config is a subset of it,
 * and Docker-only fields (Healthcheck, OnBuild, Shell) are kept because docker and podman read them.
 */
export interface ContainerConfig {
  readonly User?: string
  readonly ExposedPorts?: Readonly<Record<string, Record<string, never>>>
  readonly Env?: readonly string[]
  readonly Entrypoint?: readonly string[] | null
  readonly Cmd?: readonly string[] | null
  readonly Volumes?: Readonly<Record<string, Record<string, never>>>
  readonly WorkingDir?: string
  readonly Labels?: Readonly<Record<string, string>>
  readonly StopSignal?: string
  readonly Healthcheck?: HealthConfig
  readonly OnBuild?: readonly string[] | null
  readonly Shell?: readonly string[]
  readonly ArgsEscaped?: boolean
}

export interface HistoryEntry {
  readonly created?: string
  readonly created_by?: string
  readonly author?: string
  readonly comment?: string
  readonly empty_layer?: boolean
}

export interface ImageConfig {
  readonly created?: string
  readonly author?: string
  readonly architecture: string
  readonly os: string
  readonly variant?: string
  readonly config: ContainerConfig
  readonly rootfs: { readonly type: 'layers'; readonly diff_ids: readonly Digest[] }
  readonly history?: readonly HistoryEntry[]
}

/** A layer blob held in the content store: enough to write a manifest and to open it again. */
export interface LayerRef {
  readonly digest: Digest
  readonly diffId: Digest
  readonly size: number
  readonly mediaType: string
}

/** A finished image: its config and manifest written to the store as canonical JSON. */
export interface FinalImage {
  /** Tells it from an image index among artifacts (artifacts/artifact.ts). */
  readonly kind: 'image'
  readonly manifest: Manifest
  readonly manifestDigest: Digest
  readonly manifestSize: number
  readonly config: ImageConfig
  readonly configDigest: Digest
  readonly layers: readonly LayerRef[]
}
