import type { Expandable } from '../expansion.js'

/** A RUN --mount. Paths are absolute in the container. */
export type MountSpec =
  | { readonly type: 'cache'; readonly target: string; readonly id: string; readonly sharing: 'shared' | 'private' | 'locked'; readonly readonly: boolean; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: 'secret'; readonly id: string; readonly target: string; readonly required: boolean; readonly env?: string; readonly mode: number; readonly uid: number; readonly gid: number }
  | { readonly type: 'bind'; readonly target: string; readonly source: string; readonly fromInput?: number; readonly readwrite: boolean }
  | { readonly type: 'tmpfs'; readonly target: string; readonly size?: number }
  /** An SSH agent socket forwarded from the build's `ssh` option; `target` '' is `/run/buildkit/ssh_agent.<n>` (n-th ssh mount). */
  | { readonly type: 'ssh'; readonly id: string; readonly target: string; readonly required: boolean; readonly mode: number; readonly uid: number; readonly gid: number }

/**
 * With `expand`, the mounts' `target`, `source`, `id` and `env` are shell words expanded at solve
 * time against the stage's env, as BuildKit expands `--mount` options (graph/expansion.ts); the
 * command never is (the container's shell does that).
 */
export interface RunSpec extends Expandable {
  /** Shell form holds one string run through the image's SHELL; exec form is the argv. */
  readonly command: readonly string[]
  readonly shellForm: boolean
  readonly network: 'default' | 'none' | 'host'
  readonly mounts: readonly MountSpec[]
  /**
   * `RUN --security=insecure`: all capabilities, no masked or read-only /proc paths; the build must
   * allow the `security.insecure` entitlement. Absent for the sandbox (the default), so that spelling
   * `--security=sandbox` or not gives the same vertex.
   */
  readonly security?: 'insecure'
}
