/** A RUN --mount. Paths are absolute in the container. */
export type MountSpec =
  | { readonly type: 'cache'; readonly target: string; readonly id: string; readonly sharing: 'shared' | 'private' | 'locked'; readonly readonly: boolean; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: 'secret'; readonly id: string; readonly target: string; readonly required: boolean; readonly env?: string; readonly mode: number; readonly uid: number; readonly gid: number }
  | { readonly type: 'bind'; readonly target: string; readonly source: string; readonly fromInput?: number; readonly readwrite: boolean }
  | { readonly type: 'tmpfs'; readonly target: string; readonly size?: number }

export interface RunSpec {
  /** Shell form holds one string run through the image's SHELL; exec form is the argv. */
  readonly command: readonly string[]
  readonly shellForm: boolean
  readonly network: 'default' | 'none' | 'host'
  readonly mounts: readonly MountSpec[]
}
