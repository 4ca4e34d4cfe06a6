import type { HealthConfig } from '../../oci/types.js'
import type { Expandable } from '../expansion.js'

/**
 * Metadata-only instructions: they change the image config and history, never the filesystem.
 * `expand` (per argument for ARG) marks words to expand at solve time (see graph/expansion).
 */
export type ConfigSpec =
  | ({ readonly op: 'env'; readonly vars: readonly (readonly [string, string])[] } & Expandable)
  | { readonly op: 'arg'; readonly args: readonly ArgDecl[] }
  | ({ readonly op: 'workdir'; readonly path: string } & Expandable)
  | ({ readonly op: 'user'; readonly user: string } & Expandable)
  | ({ readonly op: 'expose'; readonly ports: readonly string[] } & Expandable)
  | ({ readonly op: 'volume'; readonly paths: readonly string[] } & Expandable)
  | ({ readonly op: 'label'; readonly labels: readonly (readonly [string, string])[] } & Expandable)
  | { readonly op: 'cmd'; readonly args: readonly string[]; readonly shellForm: boolean }
  | { readonly op: 'entrypoint'; readonly args: readonly string[]; readonly shellForm: boolean }
  | { readonly op: 'healthcheck'; readonly health: HealthConfig }
  | ({ readonly op: 'stopsignal'; readonly signal: string } & Expandable)
  | { readonly op: 'shell'; readonly shell: readonly string[] }
  | { readonly op: 'onbuild'; readonly instruction: string }
  | { readonly op: 'maintainer'; readonly name: string }
  /** Entering a new stage built on another: build args and the CMD-was-set flag do not carry over. */
  | { readonly op: 'stage' }

export type ConfigOp = ConfigSpec['op']

/** One ARG: `expand` marks a default written as a shell word; a `--build-arg` value is always literal. */
export interface ArgDecl {
  readonly name: string
  readonly value?: string
  readonly expand?: true
  readonly escapeToken?: '`'
}
