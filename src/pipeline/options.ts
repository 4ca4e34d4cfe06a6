import type { Budget } from '../insight/budget.js'
import type { Digest } from '../oci/media-types.js'
import type { ImageBuilder } from '../builder/image-builder.js'
import type { ImageConfig, ImageIndex, LayerRef, Manifest } from '../oci/types.js'
import type { Compression } from '../layer/entry.js'
import type { PushStats } from '../exporters/exporter.js'
import type { RegistryOutputOptions } from '../exporters/registry.js'
import type { ProgressEvent, SecretSource, VertexRecord } from '../solver/types.js'
import type { ScheduleRecord } from '../solver/scheduler.js'
import type { RegistryOptions } from '../registry/options.js'
import type { CacheExportSpec, CacheImportSpec } from '../cache-share/options.js'
import type { CacheReport } from '../cache-share/session.js'
import type { Driver } from '../drivers/driver.js'
import type { AttestOptions } from '../attest/options.js'

/** Where a build goes. Mirrors `docker buildx build --output`. */
export type OutputSpec =
  /** One tarball loadable by `docker load`, `podman load`, `ctr images import` and skopeo (`oci-archive:`). */
  | ({ readonly type: 'oci'; readonly dest: string } & LayerCompressionOptions)
  /** An OCI image layout directory (`oci:DIR`). */
  | ({ readonly type: 'oci-layout'; readonly dest: string } & LayerCompressionOptions)
  /** Straight into a Docker (or Podman) engine through its API, as buildx's `--load`; tags from `tags`. */
  | { readonly type: 'docker'; readonly host?: string }
  /** Pushed to every tag's registry (`--push`); see {@link RegistryOutputOptions}. */
  | ({ readonly type: 'registry' } & RegistryOutputOptions & LayerCompressionOptions)

/** buildx's `compression`, `compression-level` and `force-compression` keys of an OCI or registry output. */
export interface LayerCompressionOptions {
  /**
   * `zstd` writes the output's layers as `application/vnd.oci.image.layer.v1.tar+zstd` (always with
   * OCI media types), recompressed from the store's gzip layers at export. The base image's layers
   * keep their own compression unless {@link forceCompression}. Readers: containerd ≥ 1.5, Docker ≥ 23, podman.
   * @default 'gzip'
   */
  readonly compression?: 'gzip' | 'zstd'
  /** zstd level 0–22 (0: zstd's default, 3). @default 3 */
  readonly compressionLevel?: number
  /** Recompress the base image's layers too (buildx's `force-compression=true`). @default false */
  readonly forceCompression?: boolean
}

export interface BuildOptions {
  /** Build context directory: COPY/ADD sources are relative to it. @default process.cwd() */
  readonly context?: string
  /**
   * An ignore file used instead of the context's `.dockerignore` when it exists: the
   * `<Dockerfile name>.dockerignore` beside a Dockerfile, as BuildKit reads it ({@link fromDockerfile} finds it).
   */
  readonly dockerignore?: string
  /** Where to write the image; without it the image is only built into the store. */
  readonly output?: OutputSpec
  /** Image names, e.g. `app:1` or `registry.example/app:1`; each is also recorded in the store (`imagesmith images`). */
  readonly tags?: readonly string[]
  /** Pull FROM images from their registry even when a local build recorded that name (`--pull`). @default false */
  readonly pull?: boolean
  /**
   * `os/arch[/variant]`, or a comma list of them (as `platforms`). RUN steps for another platform
   * need emulation (binfmt_misc). @default the host's (linux/amd64 on x64)
   */
  readonly platform?: string
  /**
   * Several target platforms: one image each, in one OCI image index (`--platform a,b`), solved in
   * one solve (a step two platforms share, e.g. of a `BUILD_PLATFORM` stage, runs once). Normalised
   * as containerd does (`linux/arm64/v8` is `linux/arm64`), repeats dropped; one platform gives a
   * plain image, as `platform` does. Not with `platform`.
   */
  readonly platforms?: readonly string[]
  /**
   * @internal The target for each platform when it differs by platform (a Dockerfile's automatic
   * ARGs: {@link fromDockerfile} imports it once per platform), with its `stages`. Default: the builder built.
   */
  readonly targetFor?: (platform: string) => { readonly target: ImageBuilder; readonly stages?: Readonly<Record<string, ImageBuilder>> }
  /** Values for ARGs (`--build-arg`). */
  readonly buildArgs?: Readonly<Record<string, string>>
  /** Ignore cached layers and make every layer anew (`--no-cache`). @default false */
  readonly noCache?: boolean
  /**
   * Stages whose layers are made anew while the rest may come from the cache (`--no-cache-filter`),
   * by the names in `stages` (a Dockerfile's `AS` names, a build script's record keys).
   */
  readonly noCacheFilter?: readonly string[]
  /**
   * The build's stages by name, so steps can be told apart by stage (`noCacheFilter`, `VertexRecord.stage`).
   * {@link fromDockerfile} passes its stages itself; the CLI passes a build script's record of builders.
   */
  readonly stages?: Readonly<Record<string, ImageBuilder>>
  /** Store root (blobs, cache, snapshots). @default $IMAGESMITH_CACHE, else $XDG_CACHE_HOME/imagesmith, else ~/.cache/imagesmith */
  readonly cacheDir?: string
  /** Cancels the build: running containers are killed, temp files removed, no output written. */
  readonly signal?: AbortSignal
  /**
   * Seconds since the epoch used for `created` times and COPY/ADD mtimes, for reproducible images.
   * `'now'` writes the real time into `created` (file mtimes stay at the epoch).
   * @default $SOURCE_DATE_EPOCH, else 0
   */
  readonly sourceDateEpoch?: number | 'now'
  /**
   * `false` opts out of reproducible output: RUN layers keep their files' real times and `created` is
   * the wall clock (unless `sourceDateEpoch` / SOURCE_DATE_EPOCH names a time). The name is the
   * reproducible-builds.org term BuildKit's provenance also records (`metadata.reproducible`).
   * @default true: RUN layers' file times newer than the epoch are clamped to it (BuildKit's
   * rewrite-timestamp), and config/history times are the epoch. Base image layers are never rewritten.
   */
  readonly reproducible?: boolean
  /**
   * Attestations attached beside each platform image, as BuildKit stores them (`--sbom`,
   * `--provenance`): the output becomes an image index even for one platform. Off unless asked:
   * some consumers (AWS Lambda, Docker's classic image store) refuse or drop such an index.
   */
  readonly attest?: AttestOptions
  /** Layer compression. @default 'gzip' */
  readonly compression?: Compression
  /**
   * Limits the built image must keep, checked after the solve and before anything is named or
   * exported: `size` (bytes of its layers, compressed), `wasted` (bytes of file versions a later
   * layer deletes or overwrites), `layers` (count). Over one, the build fails with BUDGET_EXCEEDED
   * naming the worst paths or layers and their steps, and writes no output.
   * @example { size: 120e6, wasted: 5e6, layers: 30 }
   */
  readonly budget?: Budget
  /** Secrets for `RUN --mount=type=secret` by id (buildx `--secret`). */
  readonly secrets?: Readonly<Record<string, SecretSource>>
  /**
   * Network for every RUN step; a step's own `network` wins. 'host' needs `allow: ['network.host']`.
   * @default 'default' (a private network namespace per RUN, outbound through slirp4netns; the host's loopback unreachable)
   */
  readonly network?: 'default' | 'none' | 'host'
  /**
   * Entitlements granted to the build, as BuildKit's (`--allow`): `network.host` for `network: 'host'`
   * (the build's or a step's), `security.insecure` for steps with `security: 'insecure'`. A step that
   * needs one that is not granted fails with ENTITLEMENT_REQUIRED, cached or not.
   * @default []
   */
  readonly allow?: readonly ('network.host' | 'security.insecure')[]
  /**
   * SSH agent sockets for `RUN --mount=type=ssh` by id (`--ssh default=$SSH_AUTH_SOCK`): each step
   * reaches the socket through a proxy socket at the mount's target.
   * @example { default: process.env.SSH_AUTH_SOCK! }
   */
  readonly ssh?: Readonly<Record<string, string>>
  /** OCI runtime binary (`crun`, `runc` or a path). @default the first of crun, runc that works */
  readonly runtime?: string
  /**
   * Called for each progress event: vertex start, bytes written, RUN output lines, cached / done (with
   * the reason a layer was made anew) and error, with timings. The CLI renders these (`--progress`).
   */
  readonly onProgress?: (event: ProgressEvent) => void
  /** Vertices run at once at most. @default no cap beyond the build's CPU, RUN and network pools */
  readonly concurrency?: number
  /** Registry mirrors, insecure hosts, CA file and credentials for pulling base images (and pushing). */
  readonly registry?: RegistryOptions
  /**
   * Caches to import (`--cache-from`), tried in order after the store's own: a step whose key one
   * holds is not rebuilt; its layer blob is fetched (and checked) only then. Import only from refs
   * you trust: a cache decides what a hit step's layer contains. A cache that cannot be read is a
   * warning (`result.cache.warnings`).
   * @example [{ type: 'registry', ref: 'registry.example/app:buildcache' }]
   */
  readonly cacheFrom?: readonly CacheImportSpec[]
  /**
   * Caches to export (`--cache-to`) after the image is built: `registry` (one OCI manifest at `ref`),
   * `local` (an OCI layout dir), `inline` (records in the image's config). A failed export is a
   * warning in `result.cache.warnings`; the build's result stands.
   * @example [{ type: 'registry', ref: 'registry.example/app:buildcache', mode: 'max' }]
   */
  readonly cacheTo?: readonly CacheExportSpec[]
  /** Labels set in the image config over those the build made (`--label`). */
  readonly labels?: Readonly<Record<string, string>>
  /** `HOST:IP` lines added to every RUN's /etc/hosts (`--add-host`). */
  readonly addHosts?: readonly string[]
  /** Resource limits of every RUN, `NAME=SOFT[:HARD]` (`--ulimit nofile=1024:2048`). @default nofile as high as this host allows */
  readonly ulimits?: readonly string[]
  /** Size of every RUN's /dev/shm: bytes, or `64m`, `1g` (`--shm-size`). @default '64m' */
  readonly shmSize?: string | number
  /**
   * OCI annotations as buildx's `--annotation` takes them: `KEY=VALUE` annotates the image manifest
   * (and so its digest); `TYPE[,TYPE…]:KEY=VALUE` with TYPE `manifest`, `index` (index.json of an `oci`
   * or `oci-layout` output) or `manifest-descriptor` (the image's descriptor in that index.json), each
   * optionally `TYPE[os/arch]` for the build's platform only. `index-descriptor` fails
   * (ANNOTATION_NOT_STORABLE): a single-platform image has no nested index; so do `index` and
   * `manifest-descriptor` on a `registry` output, which pushes no index. With several `platforms`,
   * `manifest[os/arch]` annotates that platform's manifest alone, `manifest-descriptor` the images'
   * descriptors in the image index, `index` the image index, `index-descriptor` its descriptor in index.json.
   * @example ['org.opencontainers.image.source=https://example.com/app', 'index:org.opencontainers.image.title=app']
   */
  readonly annotations?: readonly string[]
  /**
   * Named contexts, as buildx's `--build-context NAME=VALUE`: VALUE a directory, `docker-image://REF`
   * or `oci-layout://DIR[:TAG|@DIGEST]`. A base or `from` reference NAME (`alpine` also matches
   * `alpine:latest`, `docker.io/library/alpine`) reads the context instead, and a stage named NAME (in
   * `stages`) is replaced by it. A directory copied from is read in place (its own `.dockerignore`
   * applies); as a base it is an image of its files. Git and HTTP sources fail (BUILD_CONTEXT_UNSUPPORTED).
   * @example { src: '../shared', alpine: 'docker-image://alpine@sha256:…' }
   */
  readonly buildContexts?: Readonly<Record<string, string>>
  /**
   * What runs the build once its options are checked: the local solver and store by default. A
   * driver that hands the build to another engine fills only the {@link BuildResult} fields it can.
   * @default the local driver (store → solve → finalize → export)
   */
  readonly driver?: Driver
  /**
   * Hands the build to an existing engine instead of building here (`--engine docker[,host=…]`):
   * the graph is printed as a Dockerfile and sent with the context to the engine's `/build`.
   * The engine's cache, layer bytes and digests are the engine's; {@link BuildResult} has `digest`
   * (the engine's image id), `configDigest` and `ref`, not the fields only a local solve knows.
   */
  readonly engine?: EngineOptions
}

/** A Docker Engine (API ≥ 1.39, BuildKit inside) or Podman's Docker-compatible service. */
export interface EngineOptions {
  readonly type: 'docker'
  /**
   * `unix:///path`, `tcp://host:port` (TLS as `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` say) or `ssh://user@host`.
   * @default $DOCKER_HOST, else unix:///var/run/docker.sock
   */
  readonly host?: string
  /** Images the engine may take cache from (`cachefrom`). */
  readonly cacheFrom?: readonly string[]
}

/** One platform's image of a multi-platform build. */
export interface PlatformImage {
  /** `os/arch[/variant]`, as the index lists it. */
  readonly platform: string
  /** The image manifest's digest. */
  readonly digest: Digest
  readonly manifest: Manifest
  readonly config: ImageConfig
  readonly configDigest: Digest
  readonly layers: readonly LayerRef[]
}

/** A base image pulled from a registry: the tag as resolved once in this build, to repeat it exactly. */
export interface BaseImageRecord {
  /** The normalised reference: `docker.io/library/busybox:latest`. */
  readonly ref: string
  /** The digest the reference resolved to (an index or a manifest, as the registry serves it). */
  readonly digest: Digest
}

/**
 * What a build gave. Only `digest` is known to every driver: the local driver fills every field
 * ({@link LocalBuildResult}); one that hands the build to another engine fills what that engine reports.
 */
export interface BuildResult {
  /** Manifest digest: the image's identity; of a multi-platform build, the image index's. */
  readonly digest: Digest
  /**
   * The image's manifest, config and layers; of a multi-platform build, those of its first
   * platform's image (every image is in `images`).
   */
  readonly manifest?: Manifest
  /** A multi-platform build's images, one per platform in the order the index lists them; absent for one image. */
  readonly images?: readonly PlatformImage[]
  /** A multi-platform build's image index manifest; absent for one image. */
  readonly index?: ImageIndex
  readonly config?: ImageConfig
  readonly configDigest?: Digest
  readonly layers?: readonly LayerRef[]
  /** Layer-producing steps served from the cache. */
  readonly cacheHits?: number
  /**
   * Every step of the build in graph order: its cache key (and the document hashed into it), whether
   * it was cached, how long it ran, and for a layer made anew the `reason` (what changed since it was last built).
   */
  readonly vertices?: readonly VertexRecord[]
  /** The solver's schedule: when each step ran (ms since the solve started) and which pool slots it held. */
  readonly schedule?: readonly ScheduleRecord[]
  /** Where the output was written, if any. */
  readonly output?: string
  /** The reference loaded or pushed (`docker`, `registry` outputs): the first tag. */
  readonly ref?: string
  /** What a `registry` output moved: blobs uploaded, mounted from another repository, or already there. */
  readonly pushed?: PushStats
  /** Registry base images, each with the digest it resolved to in this build. */
  readonly bases?: readonly BaseImageRecord[]
  /** What `cacheFrom` / `cacheTo` did (present when either was given): hits from imports, exports written, warnings. */
  readonly cache?: CacheReport
}

/** The fields only the local driver knows (it solved every step itself), all present. */
type LocalFields = 'manifest' | 'config' | 'configDigest' | 'layers' | 'cacheHits' | 'vertices' | 'schedule' | 'bases'

/** A build the local driver ran: every {@link BuildResult} field is there. */
export type LocalBuildResult = BuildResult & { readonly [K in LocalFields]-?: NonNullable<BuildResult[K]> }
