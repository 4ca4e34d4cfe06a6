import type { ImageBuilder } from './image-builder.js'

/** Another stage, or an image reference (`oci-archive:…`, `oci:…`, `docker-archive:…`). */
export type FromSource = ImageBuilder | string

/** `from()` options. */
export interface FromOptions {
  /**
   * The platform the stage is built for, when not the build's (`FROM --platform=…`): `os/arch[/variant]`,
   * or `BUILD_PLATFORM` (`'$BUILDPLATFORM'`) for the machine the build runs on — a stage that
   * cross-compiles runs natively, once for every target platform of a multi-platform build.
   * @default the stage it starts from's, else the build's (each target platform's)
   */
  readonly platform?: string
}

/**
 * Opt-in `$VAR` expansion (see graph/expansion): the instruction's words are shell words, expanded at
 * build time against the stage's environment (base image ENV, then ENV and ARGs in scope), as a
 * Dockerfile's are. Without it every value is taken literally.
 */
export interface WordOptions {
  /** @default false */
  readonly expand?: boolean
  /** Escape character of the shell words (a Dockerfile's `# escape=` directive). @default '\\' */
  readonly escapeToken?: '\\' | '`'
}

export interface CopyOptions extends WordOptions {
  /** Copy from another stage or image instead of the build context (`COPY --from`). */
  readonly from?: FromSource
  /**
   * An absolute directory to copy from instead of the build context, its own `.dockerignore`
   * applied: what `COPY --from=NAME` reads when a named build context NAME is a directory.
   */
  readonly context?: string
  /** `user`, `user:group`, `uid` or `uid:gid`; names resolve through the image's /etc/passwd and /etc/group (`COPY --chown`). */
  readonly chown?: string
  /** Octal mode for every copied file and directory (`COPY --chmod`). */
  readonly chmod?: string | number
  /** Patterns (as in .dockerignore) of sources to leave out (`COPY --exclude`). */
  readonly exclude?: readonly string[]
  /** Accepted for Dockerfile parity (`COPY --link`); layers here never depend on the layers below them anyway. @default false */
  readonly link?: boolean
  /** Sources keep their paths below the destination (`COPY --parents`); `a/./b/c` keeps only `b/c` (the first pivot counts). @default false */
  readonly parents?: boolean
  /**
   * Files given by their content (a Dockerfile's `COPY <<EOF`), placed as if they were sources named
   * `name`; the source list may then be empty. `expand` expands `$VAR` in the content (with `expand` on the options).
   */
  readonly inline?: readonly { readonly name: string; readonly content: string; readonly expand?: boolean }[]
}

export interface AddOptions extends Omit<CopyOptions, 'from' | 'parents'> {
  /** `sha256:<hex>` that a URL source must hash to (`ADD --checksum`). */
  readonly checksum?: string
  /**
   * Keep `.git` when a source is a git repository (`git@host:repo`, `git://…`, `ssh://…`,
   * `https://….git`, each with an optional `#ref[:subdir]`; `ADD --keep-git-dir`). @default false
   */
  readonly keepGitDir?: boolean
  /** Unpack local tar archives (plain, gzip, bzip2, xz) into the destination. @default true */
  readonly unpack?: boolean
}

export type RunMount =
  | {
      readonly type: 'cache'
      readonly target: string
      /** @default the target path */
      readonly id?: string
      /** @default 'shared' */
      readonly sharing?: 'shared' | 'private' | 'locked'
      readonly readonly?: boolean
      readonly mode?: number
      readonly uid?: number
      readonly gid?: number
    }
  | {
      readonly type: 'secret'
      readonly id: string
      /** @default `/run/secrets/<id>` (unless `env` is set) */
      readonly target?: string
      /** Expose the secret as this environment variable instead of (or as well as, with `target`) a file. */
      readonly env?: string
      /** Fail when the secret is not provided. @default false */
      readonly required?: boolean
      /** @default 0o400 */
      readonly mode?: number
      readonly uid?: number
      readonly gid?: number
    }
  | {
      readonly type: 'bind'
      readonly target: string
      /** Path in the context (or in `from`). @default '.' */
      readonly source?: string
      readonly from?: FromSource
      /** Writes are allowed but thrown away. @default false */
      readonly readwrite?: boolean
    }
  | { readonly type: 'tmpfs'; readonly target: string; readonly size?: number }
  | {
      /** The SSH agent socket given to the build as `ssh: { [id]: path }` (`--ssh id=PATH`), e.g. for `git clone git@…`. */
      readonly type: 'ssh'
      /** @default 'default' */
      readonly id?: string
      /** Where the socket appears; `SSH_AUTH_SOCK` points at the first ssh mount's. @default `/run/buildkit/ssh_agent.<n>` (n-th ssh mount) */
      readonly target?: string
      /** Fail (SSH_NOT_FORWARDED) when the build forwards no socket of this id; otherwise the step runs without it. @default false */
      readonly required?: boolean
      /** @default 0o600 */
      readonly mode?: number
      readonly uid?: number
      readonly gid?: number
    }

/** `expand` applies to the mounts' `target`, `source`, `id` and `env` words only: the command is the shell's to expand. */
export interface RunOptions extends WordOptions {
  /**
   * `RUN --network`. 'host' needs the build's `allow: ['network.host']` (an entitlement, as in BuildKit).
   * @default 'default' (a private network namespace per RUN, outbound through slirp4netns; the host's loopback unreachable)
   */
  readonly network?: 'default' | 'none' | 'host'
  /**
   * `RUN --security`: 'insecure' runs the step with all capabilities and without masked or read-only
   * /proc paths; the build must allow it (`allow: ['security.insecure']`). @default 'sandbox'
   */
  readonly security?: 'sandbox' | 'insecure'
  /** `RUN --mount` */
  readonly mounts?: readonly RunMount[]
}

export interface HealthcheckOptions {
  /** A string runs through the shell (`CMD-SHELL`); an array is exec form (`CMD`). */
  readonly test: string | readonly string[]
  /** Go duration (`30s`) or seconds. */
  readonly interval?: string | number
  readonly timeout?: string | number
  readonly startPeriod?: string | number
  /** Probe interval during the start period (`--start-interval`). */
  readonly startInterval?: string | number
  readonly retries?: number
}
