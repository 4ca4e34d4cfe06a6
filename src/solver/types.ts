import type { RunSettings } from '../pipeline/run-settings.js'
import type { AnyVertex, NodeKind, Vertex } from '../graph/node.js'
import type { Digest } from '../oci/media-types.js'
import type { ImageConfig, LayerRef, Platform } from '../oci/types.js'
import type { Compression } from '../layer/entry.js'
import type { Store } from '../store/store.js'
import type { PullSession } from '../registry/pull.js'
import type { Limits } from './scheduler.js'
import type { CacheBackend } from '../cache/backend.js'
import type { MissDetail, PreviousBuild } from '../cache/layer-cache.js'
import type { TreeProbe } from '../context/tree-probe.js'

/** The image as it stands after a vertex: what the next op applies to. */
export interface ImageState {
  readonly config: ImageConfig
  readonly layers: readonly LayerRef[]
  /** ARGs in scope in this stage, with their values (undefined = declared without a value). */
  readonly args: readonly { readonly name: string; readonly value?: string }[]
  /** Whether this stage set CMD itself (ENTRYPOINT then keeps it; otherwise ENTRYPOINT clears an inherited CMD). */
  readonly cmdSet: boolean
}

/**
 * What build() reports as it goes (`onProgress`), in order per vertex: `start`, then `log` / `bytes`
 * while it runs, then `cached` (a hit) and `done`, or `error`. `time` is ms since the epoch.
 */
export type ProgressEvent =
  | {
      readonly type: 'start'
      readonly vertex: Digest
      readonly description: string
      readonly stage?: string
      /** Set on a line of work a step waits on that is not its own (its base's layers read or unpacked): the step's vertex. */
      readonly parent?: Digest
      readonly time?: number
    }
  | { readonly type: 'cached'; readonly vertex: Digest; readonly description: string; readonly time?: number }
  | {
      readonly type: 'done'
      readonly vertex: Digest
      readonly description: string
      readonly ms: number
      /** Whether the vertex's layer came from the cache (layer-producing vertices; false for the rest). */
      readonly cached?: boolean
      /** For a layer made anew: which input changed since this step was last built in this store. */
      readonly reason?: string
      /** As on `start`: this line is work the step `parent` waited on, and `ms` is not in the step's. */
      readonly parent?: Digest
      readonly time?: number
    }
  /** Bytes of a layer written so far (compressed), as the writer goes. */
  | { readonly type: 'bytes'; readonly vertex: Digest; readonly bytes: number; readonly time?: number }
  | { readonly type: 'log'; readonly vertex: Digest; readonly stream: 'stdout' | 'stderr'; readonly data: Buffer }
  | { readonly type: 'error'; readonly vertex: Digest; readonly description: string; readonly error: unknown; readonly time?: number }

/** A secret for `RUN --mount=type=secret`: a host file or an environment value (buildx `--secret`). */
export type SecretSource = { readonly src: string } | { readonly env: string } | { readonly value: string }

/** A base image's config and layers, as FROM reads them. */
export interface BaseImage {
  readonly config: ImageConfig
  readonly layers: readonly LayerRef[]
}

/** Everything an executor may use. Plain values only: the environment was read before this was made. */
export interface ExecContext {
  readonly store: Store
  readonly contextDir: string
  /** An ignore file that replaces the context's `.dockerignore` when it exists (a Dockerfile's `<name>.dockerignore`). */
  readonly dockerignore?: string
  /**
   * The context tree's probe (context/tree-probe.ts), taken once per build when first asked; its
   * `dir` says which directory it lists (a named context's COPY has another).
   */
  readonly contextProbe?: () => Promise<TreeProbe | undefined>
  /** Seconds since the epoch for created times and COPY mtimes (SOURCE_DATE_EPOCH, or 0). */
  readonly epoch: number
  /** When set, RUN layers have their mtimes clamped to `epoch` (BuildKit's rewrite-timestamp). */
  readonly clampRunMtimes: boolean
  /** ISO time written as `created` in config and history. */
  readonly created: string
  /** The platform the vertex is built for: the vertex's own (the solver sets it), else the build's. */
  readonly platform: Platform
  readonly noCache: boolean
  readonly compression: Compression
  readonly secrets: Readonly<Record<string, SecretSource>>
  readonly network: 'default' | 'none' | 'host'
  /** Entitlements the build grants (`network.host`, `security.insecure`). @default none */
  readonly allow?: readonly string[]
  /** SSH agent socket paths by id, for ssh mounts. @default none */
  readonly ssh?: Readonly<Record<string, string>>
  /** Extra /etc/hosts lines, ulimits and /dev/shm size of every RUN. @default none */
  readonly runSettings?: RunSettings
  /** Runtime binary path or name (crun/runc); undefined = detect. */
  readonly runtime?: string
  readonly signal?: AbortSignal
  /** Registry pulls for FROM: one tag resolves to one digest per build. */
  readonly registry?: PullSession
  /**
   * Resolves a FROM reference once per build: the pipeline reads base configs before compiling (their
   * ONBUILD triggers become steps), and FROM reuses what it read; once per reference and platform
   * (a multi-platform build reads each base's image for each platform). Absent: FROM resolves by itself.
   */
  readonly resolveBase?: (ref: string, platform: Platform) => Promise<BaseImage>
  /** The build's resource pools (CPU, RUN containers, network); the solver sets them. Absent: unbounded. */
  readonly limits?: Limits
  /**
   * Where layer steps look their keys up and record what they made. @default the store's own cache
   * (cache/local.ts over `store`)
   */
  readonly cache?: CacheBackend
  /**
   * Called with each layer step's cache key once it is known, before the cache is asked and before
   * anything of the layer is made (`vertex` is {@link step}'s). A COPY started early may report a
   * key for its guessed parent and then another for the real one. @default none
   */
  readonly onCacheKey?: (key: CacheKey, vertex?: Digest) => void
  /** Stages whose layers are made anew (`--no-cache-filter`), by name. @default none */
  readonly noCacheFilter?: readonly string[]
  /** The vertex this context runs (the solver sets it per vertex): names the cache slot and the stage. */
  readonly step?: {
    readonly vertex: Digest
    readonly description: string
    readonly stage?: string
    /**
     * Whether a later step of this build assembles a filesystem that holds this step's layer (a RUN on
     * top, a COPY --from or bind mount of this stage): then a layer writer may place the unpacked
     * snapshot as it writes, instead of a later unpack reading the layer back.
     */
    readonly rootfsWanted?: boolean
  }
  emit(event: ProgressEvent): void
}

/**
 * The document a cache key is the digest of (canonical JSON): everything the vertex's layer depends
 * on. Kept beside the key so a miss can be explained by what changed.
 */
export type CacheKeyDoc = Readonly<Record<string, unknown>>

export interface CacheKey {
  readonly digest: Digest
  readonly doc: CacheKeyDoc
}

export interface ExecResult {
  readonly state: ImageState
  /** True when the op's layer came from the cache instead of being made. */
  readonly cached: boolean
  /** The cache key of the layer the op made or reused (layer-producing ops only). */
  readonly key?: CacheKey
  /** For a layer made anew: the input that changed since the step was last built (see layer-cache). */
  readonly reason?: string
}

/** What one vertex did in a solve, in graph order. */
export interface VertexRecord {
  readonly vertex: Digest
  readonly description: string
  /** Cache key of the vertex's layer (layer-producing vertices only). */
  readonly key?: Digest
  /** The document `key` is the digest of. */
  readonly keyDoc?: CacheKeyDoc
  /** True when the layer came from the cache. */
  readonly cached: boolean
  /** For a layer made anew: what changed since this step's last build in this store (`first build of this step`, `1 context file changed: a.txt`, `env changed: FOO`, …). */
  readonly reason?: string
  /** The stage the vertex belongs to, when the build names its stages. */
  readonly stage?: string
  /** Time the vertex ran, from taking its queue slot to its result. */
  readonly ms: number
}

/**
 * Runs one kind of vertex. `inputs[0]` is the state to apply the op to (absent for `source`),
 * further inputs are the states of stages the op reads from.
 */
export interface Executor<K extends NodeKind> {
  readonly kind: K
  exec(vertex: Vertex<K>, inputs: readonly ImageState[], ctx: ExecContext): Promise<ExecResult>
  /**
   * Everything {@link exec} does up to the layer's cache key (expanding the spec, reading the parent,
   * hashing sources), and what then makes the layer. When present the solver calls it instead of
   * exec and settles the layer through the cache itself (cache/layer-cache.ts `execPlan`); exec
   * must do the same as both together.
   */
  prepare?(vertex: Vertex<K>, inputs: readonly ImageState[], ctx: ExecContext): Promise<Prepared>
  /**
   * Starts the vertex before its parent is done, so its costly part (a COPY's layer) runs while
   * earlier steps still run. The solver calls it only when RUN, COPY and ADD steps alone lie
   * between the vertex and `inputs[0]`, an ancestor (they change files, never config, ARGs or workdir); the
   * other inputs are the vertex's own. Whatever the parent's files decide must be checked again
   * by the returned finisher on the real inputs, falling back to {@link exec} when it differs. A
   * rejection (other than an abort) only means "not early": the solver calls {@link exec} once
   * the parent is done, which reports the error if it is real.
   */
  early?(vertex: Vertex<K>, inputs: readonly ImageState[], ctx: ExecContext): Promise<EarlyFinish>
}

/**
 * A layer step split at its cache key, as BuildKit's ops give their CacheMap before Exec: the key
 * document and what was computed for it (a COPY's per-file digests), then what makes the layer.
 * The solver has the key looked up before {@link make} runs, so a cache can answer first.
 */
export interface LayerPlan {
  /** Everything the layer's bytes depend on; the platform is added when it is hashed. */
  readonly keyDoc: CacheKeyDoc
  /** Beside the key, never in it: what explains a miss. */
  readonly detail?: MissDetail
  /** Writes the layer into the store; runs only on a miss. */
  make(previous?: PreviousBuild): Promise<LayerRef>
  /** The vertex's state with the layer, from the cache or made. */
  finish(layer: LayerRef): ImageState
  /** Frees what the plan holds (ADD's downloads) once the layer is settled, whatever happened. */
  release?(): Promise<void>
}

/** What {@link Executor.prepare} gives: a layer step, or the result of a step that turned out to need no layer. */
export type Prepared = LayerPlan | ExecResult

/** Finishes a vertex started with {@link Executor.early}, on its real inputs. */
export type EarlyFinish = (inputs: readonly ImageState[], ctx: ExecContext) => Promise<ExecResult>

export type ExecutorTable = { readonly [K in NodeKind]: Executor<K> }

export type { AnyVertex }
