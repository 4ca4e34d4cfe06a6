import type { OciSpec } from './oci-spec.js'

export type OutputStream = 'stdout' | 'stderr'

/**
 * An OCI runtime that runs one container to completion. `run` writes `spec` as
 * `<bundleDir>/config.json`, runs the container without a terminal, streams its output to
 * `onOutput` and resolves with the exit code of the container's process. On `signal` the
 * container is killed and deleted before the promise rejects.
 */
export interface Runtime {
  /** The binary, as found (e.g. `/usr/sbin/runc`). */
  readonly binary: string
  /** `runc` or `crun` (basename of the binary). */
  readonly name: string
  run(spec: OciSpec, bundleDir: string, signal: AbortSignal | undefined, onOutput: (stream: OutputStream, data: Buffer) => void): Promise<{ exitCode: number }>
}
