/**
 * The shape of a Docker/moby seccomp profile (moby/profiles seccomp.Seccomp): the OCI
 * `linux.seccomp` fields plus an architecture map and per-rule conditions on the container's
 * capabilities, the host architecture and the kernel version, resolved before the runtime sees it.
 */

export interface SeccompArg {
  readonly index: number
  readonly value: number
  readonly valueTwo?: number
  readonly op: string
}

/** A rule applies when every listed condition of `includes` holds and none of `excludes` does. */
export interface SeccompFilter {
  /** Native architecture names as moby spells them (amd64, x86, x32, arm, arm64, s390x, …). */
  readonly arches?: readonly string[]
  readonly caps?: readonly string[]
  /** "major.minor" */
  readonly minKernel?: string
}

export interface SeccompRule {
  readonly names: readonly string[]
  readonly action: string
  readonly errnoRet?: number
  readonly args?: readonly SeccompArg[]
  readonly comment?: string
  readonly includes?: SeccompFilter
  readonly excludes?: SeccompFilter
}

export interface SeccompProfile {
  readonly defaultAction: string
  readonly defaultErrnoRet?: number
  readonly archMap: readonly { readonly architecture: string; readonly subArchitectures: readonly string[] }[]
  readonly syscalls: readonly SeccompRule[]
}

/** The OCI runtime spec's `linux.seccomp` section. */
export interface OciSeccomp {
  readonly defaultAction: string
  readonly defaultErrnoRet?: number
  readonly architectures: readonly string[]
  readonly syscalls: readonly {
    readonly names: readonly string[]
    readonly action: string
    readonly errnoRet?: number
    readonly args?: readonly SeccompArg[]
  }[]
}
