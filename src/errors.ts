/**
 * Every failure imagesmith reports on purpose is an {@link ImagesmithError} with a stable `code`.
 * Codes never change meaning; new ones are appended. `details` carries the offending value
 * (path, reference, line, entry) so callers can act on it without parsing the message.
 */
export const ErrorCodes = Object.freeze({
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  INVALID_PORT: 'INVALID_PORT',
  INVALID_SIGNAL: 'INVALID_SIGNAL',
  INVALID_REFERENCE: 'INVALID_REFERENCE',
  UNKNOWN_FROM: 'UNKNOWN_FROM',
  COPY_SOURCE_NOT_FOUND: 'COPY_SOURCE_NOT_FOUND',
  COPY_OUTSIDE_CONTEXT: 'COPY_OUTSIDE_CONTEXT',
  COPY_DEST_NOT_DIR: 'COPY_DEST_NOT_DIR',
  ADD_UNSAFE_ARCHIVE_ENTRY: 'ADD_UNSAFE_ARCHIVE_ENTRY',
  ADD_DOWNLOAD_FAILED: 'ADD_DOWNLOAD_FAILED',
  ADD_CHECKSUM_MISMATCH: 'ADD_CHECKSUM_MISMATCH',
  BASE_IMAGE_INVALID: 'BASE_IMAGE_INVALID',
  BLOB_CORRUPT: 'BLOB_CORRUPT',
  BLOB_NOT_FOUND: 'BLOB_NOT_FOUND',
  BUILD_SCRIPT_INVALID: 'BUILD_SCRIPT_INVALID',
  TARGET_NOT_FOUND: 'TARGET_NOT_FOUND',
  OUTPUT_INVALID: 'OUTPUT_INVALID',
  RUNTIME_NOT_FOUND: 'RUNTIME_NOT_FOUND',
  RUN_FAILED: 'RUN_FAILED',
  RUN_SETUP_FAILED: 'RUN_SETUP_FAILED',
  USER_NOT_FOUND: 'USER_NOT_FOUND',
  SECRET_NOT_FOUND: 'SECRET_NOT_FOUND',
  UNSUPPORTED_PLATFORM: 'UNSUPPORTED_PLATFORM',
  CYCLE: 'CYCLE',
  ABORTED: 'ABORTED',
  /** The disk or quota holding the store or the output is full (ENOSPC, EDQUOT); `details.path` names where. */
  NO_SPACE: 'NO_SPACE',
  /** The output path cannot be written (read-only filesystem, permissions); `details.path` names it. */
  OUTPUT_NOT_WRITABLE: 'OUTPUT_NOT_WRITABLE',
  /** The build context directory does not exist or is not a directory; `details.path` names it. */
  CONTEXT_NOT_FOUND: 'CONTEXT_NOT_FOUND',
  /** A file or directory of the build context cannot be read; `details.path` names it. */
  CONTEXT_UNREADABLE: 'CONTEXT_UNREADABLE',
  /** Too many levels of symbolic links (a loop) resolving `details.path`. */
  SYMLINK_LOOP: 'SYMLINK_LOOP',
  /** Making, diffing or unpacking a layer snapshot failed (xattrs, whiteouts, device nodes). */
  SNAPSHOT_FAILED: 'SNAPSHOT_FAILED',
  /** An overlay mount failed, or the image has more layers than overlay can stack. */
  MOUNT_FAILED: 'MOUNT_FAILED',
  /** The OCI runtime is there but does not run containers (`details.runtime` names the binary). */
  RUNTIME_FAILED: 'RUNTIME_FAILED',
  /** The store's directory cannot be written (read-only filesystem, permissions); `details.path` names it. */
  STORE_NOT_WRITABLE: 'STORE_NOT_WRITABLE',
  /** A value that should be a sha256 digest is not one (a corrupt record or manifest, not a caller's argument). */
  DIGEST_INVALID: 'DIGEST_INVALID',
  /** The build graph handed to the solver is inconsistent (e.g. a `copy({ from })` without its stage input). */
  GRAPH_INVALID: 'GRAPH_INVALID',
  /** Anything unexpected: still typed, with the step and the original error as `cause`. */
  INTERNAL: 'INTERNAL',
  /** `imagesmith tag|rmi|save` or `from('local:…')` naming no local image; `details.reference` names it. */
  IMAGE_NOT_FOUND: 'IMAGE_NOT_FOUND',
  /** A file a layer is made from cannot be opened; `details.source` is the host path, `details.path` the entry. */
  SOURCE_UNREADABLE: 'SOURCE_UNREADABLE',
  /** A file changed (its size, or its bytes against the hash its cache key was made with) while its layer was written; `details.source` names it. */
  SOURCE_CHANGED: 'SOURCE_CHANGED',
  /**
   * An ADD archive that its decompressor (gzip, xz, bzip2) refuses, or whose tar headers are malformed or over the
   * bounds (an extended header or long name over 1 MiB, over 10 000 PAX records); `details.path` names it,
   * `details.offset` the bad header's byte in the tar stream.
   */
  ADD_ARCHIVE_INVALID: 'ADD_ARCHIVE_INVALID',
  /** A host tool imagesmith runs (xz, bzip2, getfattr, …) is not installed or cannot start; `details.tool` names it. */
  TOOL_NOT_FOUND: 'TOOL_NOT_FOUND',
  /** No Docker Engine answers at the `docker` output's host (`details.host`). */
  DOCKER_UNREACHABLE: 'DOCKER_UNREACHABLE',
  /** The Docker Engine refused the image the `docker` output sent it (`details.host`, its message). */
  DOCKER_LOAD_FAILED: 'DOCKER_LOAD_FAILED',
  /** A registry refused a blob upload (bad session, digest or range); `details.digest` and `details.repository` name it. */
  BLOB_UPLOAD_INVALID: 'BLOB_UPLOAD_INVALID',
  /** A registry refused a pushed manifest; `details.reference` names the tag. */
  MANIFEST_INVALID: 'MANIFEST_INVALID',
  /** A `docker-credential-*` helper failed to store or erase credentials; `details.helper` names it. */
  CREDENTIALS_STORE_FAILED: 'CREDENTIALS_STORE_FAILED',
  /** A Dockerfile that does not parse; `details` has `line`, `column` and the offending line as `text`. */
  DOCKERFILE_SYNTAX: 'DOCKERFILE_SYNTAX',
  /** A Dockerfile word in instruction position that is no instruction; `details` has `line`, `column`, `text`, `instruction`. */
  UNKNOWN_INSTRUCTION: 'UNKNOWN_INSTRUCTION',
  /** A `$VAR` word that cannot be expanded (`${V:?msg}`, a bad `${…}`, an open quote, past a bound of shell/limits.ts: `details.limit`, `details.variable`); `details.word` is the word. */
  EXPANSION_FAILED: 'EXPANSION_FAILED',
  /** `--from`, `FROM` or `--target` naming no stage defined before it; `details` has `stage`, `line`, `column`, `text`. */
  UNDEFINED_STAGE: 'UNDEFINED_STAGE',
  /** Valid Dockerfile syntax this builder cannot build (e.g. `ADD` of a git URL); `details` has `line`, `column`, `text`, `feature`. */
  UNSUPPORTED_INSTRUCTION: 'UNSUPPORTED_INSTRUCTION',
  /** A builder step that Dockerfile syntax cannot express (toDockerfile); `details` names the value. */
  NOT_REPRESENTABLE: 'NOT_REPRESENTABLE',
  /** An index offers no image for the requested platform; `details.available` lists what it offers. */
  PLATFORM_NOT_FOUND: 'PLATFORM_NOT_FOUND',
  /** The registry has no such repository, tag or manifest digest (404); `details.reference` names it. */
  MANIFEST_UNKNOWN: 'MANIFEST_UNKNOWN',
  /** The registry refused the credentials or has none for us (401/403); never carries the secret. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /** Bytes from a registry do not hash to the digest they were asked for; nothing was stored. */
  DIGEST_MISMATCH: 'DIGEST_MISMATCH',
  /** No connection to the registry (refused, DNS, TLS, dropped) after the retry budget; `details.registry` names it. */
  REGISTRY_UNREACHABLE: 'REGISTRY_UNREACHABLE',
  /** Any other registry response the distribution API does not allow here; `details.status` holds the HTTP status. */
  REGISTRY_ERROR: 'REGISTRY_ERROR',
  /** A blob the manifest names is not in the registry (404). */
  BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  /** A `docker-credential-*` helper or config.json could not be used; `details.helper` / `details.path` name it. */
  CREDENTIALS_FAILED: 'CREDENTIALS_FAILED',
  /**
   * A step or option needs an entitlement the build did not allow (`allow` / `--allow`): `details.entitlement`
   * is `network.host` or `security.insecure`, `details.step` the step (absent for a build option).
   */
  ENTITLEMENT_REQUIRED: 'ENTITLEMENT_REQUIRED',
  /** `RUN --mount=type=ssh,required=true` and the build forwards no SSH agent socket of that id (`ssh` / `--ssh`); `details.id` names it. */
  SSH_NOT_FORWARDED: 'SSH_NOT_FORWARDED',
  /** RUN's default network needs a user-mode network tool (slirp4netns) that is not installed; `details.tool` and `details.package` name it. */
  NETWORK_TOOL_NOT_FOUND: 'NETWORK_TOOL_NOT_FOUND',
  /**
   * A rootless build needs ids other than the user's own (a USER, a chown, a base layer's owner) and the user has no
   * subordinate range in /etc/subuid and /etc/subgid; `details.user` names the user, `details.fix` the `usermod` line.
   */
  ROOTLESS_NO_SUBIDS: 'ROOTLESS_NO_SUBIDS',
  /** Unprivileged user namespaces are turned off on this host; `details.sysctl` names the setting to change. */
  ROOTLESS_USERNS_DISABLED: 'ROOTLESS_USERNS_DISABLED',
  /** A tool a rootless build needs (`newuidmap`, `newgidmap`, `unshare`) is not installed; `details.tool` and `details.package` name it. */
  ROOTLESS_TOOL_NOT_FOUND: 'ROOTLESS_TOOL_NOT_FOUND',
  /**
   * A rootless build met an id its user namespace does not map (a base layer's file owner, a USER, a chown):
   * `details.id`, `details.kind` (`uid` | `gid`), `details.max` (the highest mapped id) and, where known, `details.path`.
   */
  ROOTLESS_ID_UNMAPPED: 'ROOTLESS_ID_UNMAPPED',
  /** RUN's user-mode network (slirp4netns) cannot open `details.path` (/dev/net/tun) as this user; `details.fix` says how to allow it. */
  ROOTLESS_TUN_DENIED: 'ROOTLESS_TUN_DENIED',
  /** The process that runs a rootless build's steps in its user namespace could not start or died; `details.exitCode` / `details.signal` say how. */
  ROOTLESS_WORKER_FAILED: 'ROOTLESS_WORKER_FAILED',
  /**
   * A registry request did not finish within its deadline (a server sending a byte now and then, so the
   * idle timeout never fires); `details.registry`, `details.url` and `details.deadlineMs` say which and how long.
   */
  REGISTRY_TIMEOUT: 'REGISTRY_TIMEOUT',
  /**
   * An annotation (`annotations` / `--annotation`) of a type the image or output has no place for: `index-descriptor`
   * (a single-platform image has no nested index), or `index` / `manifest-descriptor` on a registry push (no index is
   * pushed); `details.annotation`, `details.type` and `details.output` say which.
   */
  ANNOTATION_NOT_STORABLE: 'ANNOTATION_NOT_STORABLE',
  /**
   * A named build context (`buildContexts` / `--build-context NAME=VALUE`) of a source this build cannot read:
   * a git or http(s) URL, bake's `target:`; `details.name` and `details.value` say which.
   */
  BUILD_CONTEXT_UNSUPPORTED: 'BUILD_CONTEXT_UNSUPPORTED',
  /** A builder loaded without the package entry was asked to build (or to lower ONBUILD triggers): no pipeline was connected to it. */
  BUILDER_NOT_CONNECTED: 'BUILDER_NOT_CONNECTED',
  /**
   * An output that takes one image was given an image index (a multi-platform image): the `docker` output
   * (`docker load` cannot take an index); `details.output` names the output and `details.platforms` the index's platforms.
   */
  INDEX_NOT_SUPPORTED: 'INDEX_NOT_SUPPORTED',
  /**
   * No emulator to register for an architecture (`imagesmith binfmt --install`): qemu-user-static's
   * `qemu-<arch>.conf` is absent; `details.arch` names it and `details.path` the file looked for.
   */
  EMULATOR_MISSING: 'EMULATOR_MISSING',
  /**
   * Registering a binfmt_misc handler (or mounting binfmt_misc) was refused: it needs root in the
   * host's namespaces; `details.path` names what was written or mounted.
   */
  BINFMT_NOT_PERMITTED: 'BINFMT_NOT_PERMITTED',
  /**
   * A bake file this build cannot take: not JSON, an HCL file (JSON only), a key bake does not know or one not
   * supported yet, a value of the wrong type, an undefined `${VAR}`; `details.file`, `details.target` /
   * `details.group` / `details.variable` and `details.key` say where.
   */
  BAKE_FILE_INVALID: 'BAKE_FILE_INVALID',
  /** Bake targets or groups that reach themselves: `details.kind` (`inherits`, `group`, `context`) and `details.cycle` (the names, in order). */
  BAKE_CYCLE: 'BAKE_CYCLE',
  /** A `--set TARGET.KEY=VALUE` override that is malformed, names an unknown key or a key the target cannot take; `details.set` and `details.key`. */
  BAKE_SET_INVALID: 'BAKE_SET_INVALID',
  /**
   * A build cache artifact (`cacheFrom`) this build cannot take: not our cache manifest (another tool's), a config
   * that does not parse or breaks a bound, an entry whose digest is malformed or names no layer of the manifest;
   * `details.source` names the cache, `details.field` what is wrong. An import reports it as a warning and goes on.
   */
  CACHE_INVALID: 'CACHE_INVALID',
  /** A `cacheTo` / `cacheFrom` option that is malformed (unknown type, missing `ref`/`dest`/`src`, `mode=max` on inline); `details.option`. */
  CACHE_OPTION_INVALID: 'CACHE_OPTION_INVALID',
  /**
   * A bake target that failed, which fails the bake (the rest of its solve is cancelled): `details.target` (the first),
   * `details.targets` (every target that needed the failed step), `details.code` (the underlying error's code, which
   * is `cause`), and that error's details (`step`, `vertex`, …).
   */
  BAKE_TARGET_FAILED: 'BAKE_TARGET_FAILED',
  /** No Docker Engine (or Podman service) answered where a build's `engine` points: `details.host` names it. */
  ENGINE_UNREACHABLE: 'ENGINE_UNREACHABLE',
  /** The engine's API is older than a hand-off needs: `details.apiVersion` (the engine's) and `details.needed`. */
  ENGINE_API_TOO_OLD: 'ENGINE_API_TOO_OLD',
  /**
   * A build an engine's sessionless `/build` cannot carry (a secret or ssh mount, a second context),
   * refused before anything is sent: `details.step` and `details.feature`.
   */
  ENGINE_FEATURE_UNSUPPORTED: 'ENGINE_FEATURE_UNSUPPORTED',
  /** The engine refused or failed a build (or a load, push or save) for a reason not mapped to another code: `details.host`, `details.message`. */
  ENGINE_FAILED: 'ENGINE_FAILED',
  /**
   * An SBOM was asked of an image holding more package metadata (dpkg/apk databases, package.json,
   * dist-info METADATA) than is read: `details.limitFiles` / `details.limitBytes`, `details.path` and `details.layer`.
   */
  ATTESTATION_INPUT_TOO_LARGE: 'ATTESTATION_INPUT_TOO_LARGE',
  /** An `attest` option (or `--sbom` / `--provenance` / `--attest` flag) this build cannot take: `details.option` and `details.value`. */
  ATTEST_OPTION_INVALID: 'ATTEST_OPTION_INVALID',
  /** The built image breaks a budget (`budget` option, `--budget`): details name the budget, the limit, the actual figure and the worst paths or layers with their steps. Nothing is named or exported. */
  BUDGET_EXCEEDED: 'BUDGET_EXCEEDED',
  /** An output was asked for a layer compression its consumer cannot read (zstd into a Docker engine or `docker load` tarball: Docker before 23.0 fails on it). */
  OUTPUT_COMPRESSION_UNSUPPORTED: 'OUTPUT_COMPRESSION_UNSUPPORTED',
})

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

export class ImagesmithError extends Error {
  readonly code: ErrorCode
  readonly details: Readonly<Record<string, unknown>>

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ImagesmithError'
    this.code = code
    this.details = Object.freeze({ ...details })
  }
}

/** A bad argument to a builder method or build option: raised eagerly, before any I/O. */
export class InvalidArgumentError extends ImagesmithError {
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details)
    this.name = 'InvalidArgumentError'
  }
}

/** A COPY/ADD source problem; `details.path` names the source as the user wrote it. */
export class CopyError extends ImagesmithError {
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details)
    this.name = 'CopyError'
  }
}

/** An archive entry ADD refused to unpack; `details.archive` and `details.entry` name it. */
export class UnsafeArchiveError extends ImagesmithError {
  constructor(message: string, details: { archive: string; entry: string; reason: string }) {
    super(ErrorCodes.ADD_UNSAFE_ARCHIVE_ENTRY, message, details)
    this.name = 'UnsafeArchiveError'
  }
}

/** A RUN step that exited non-zero. Mirrors Dagger's ExecError: argv, exit code, output tail. */
export class ExecError extends ImagesmithError {
  readonly exitCode: number
  readonly command: readonly string[]
  readonly outputTail: string

  /** `hint`: what the build knows that may explain the failure (e.g. a rootless build's missing id range), with the fix. */
  constructor(command: readonly string[], exitCode: number, outputTail: string, hint?: string) {
    super(
      ErrorCodes.RUN_FAILED,
      `RUN ${JSON.stringify(command)} exited with code ${exitCode}${outputTail ? `:\n${outputTail}` : ''}${hint ? `\n${hint}` : ''}`,
      { command, exitCode, outputTail, ...(hint ? { hint } : {}) },
    )
    this.name = 'ExecError'
    this.exitCode = exitCode
    this.command = command
    this.outputTail = outputTail
  }
}

/**
 * The same error with more `details` (e.g. the step it failed in), keeping its class, message,
 * stack and cause. Details already present win: the site that threw knew best.
 */
export function withDetails<E extends ImagesmithError>(e: E, extra: Record<string, unknown>): E {
  const missing = Object.entries(extra).filter(([k, v]) => v !== undefined && !(k in e.details))
  if (missing.length === 0) return e
  const copy = Object.create(Object.getPrototypeOf(e) as object) as E
  Object.defineProperties(copy, Object.getOwnPropertyDescriptors(e))
  Object.defineProperty(copy, 'details', { value: Object.freeze({ ...e.details, ...Object.fromEntries(missing) }), enumerable: true })
  return copy
}

/** Too many levels of symbolic links (ELOOP) resolving `path`: typed where it is found. */
export function symlinkLoopError(path: string, details: Record<string, unknown> = {}): ImagesmithError {
  return new ImagesmithError(ErrorCodes.SYMLINK_LOOP, `too many levels of symbolic links resolving ${path}`, { path, ...details })
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes))

/**
 * True for imagesmith's errors, also when they come from another copy of the package (a build
 * script importing its own imagesmith, the CLI from dist/): the stable code is what identifies them.
 */
export function isImagesmithError(e: unknown): e is ImagesmithError {
  return e instanceof ImagesmithError || (e instanceof Error && KNOWN_CODES.has((e as { code?: unknown }).code as string) && typeof (e as { details?: unknown }).details === 'object')
}

export function abortError(signal: AbortSignal): ImagesmithError {
  return new ImagesmithError(ErrorCodes.ABORTED, 'build aborted', { reason: String(signal.reason ?? '') })
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal)
}
