import type { HealthConfig } from '../../oci/types.js'

/** Metadata-only instructions: they change the image config and history, never the filesystem. */
export type ConfigSpec =
  | { readonly op: 'env'; readonly vars: readonly (readonly [string, string])[] }
  | { readonly op: 'arg'; readonly args: readonly { readonly name: string; readonly value?: string }[] }
  | { readonly op: 'workdir'; readonly path: string }
  | { readonly op: 'user'; readonly user: string }
  | { readonly op: 'expose'; readonly ports: readonly string[] }
  | { readonly op: 'volume'; readonly paths: readonly string[] }
  | { readonly op: 'label'; readonly labels: readonly (readonly [string, string])[] }
  | { readonly op: 'cmd'; readonly args: readonly string[]; readonly shellForm: boolean }
  | { readonly op: 'entrypoint'; readonly args: readonly string[]; readonly shellForm: boolean }
  | { readonly op: 'healthcheck'; readonly health: HealthConfig }
  | { readonly op: 'stopsignal'; readonly signal: string }
  | { readonly op: 'shell'; readonly shell: readonly string[] }
  | { readonly op: 'onbuild'; readonly instruction: string }
  | { readonly op: 'maintainer'; readonly name: string }
  /** Entering a new stage built on another: build args and the CMD-was-set flag do not carry over. */
  | { readonly op: 'stage' }

export type ConfigOp = ConfigSpec['op']
