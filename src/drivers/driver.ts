/**
 * The seam between a checked build and what runs it (STYLE.md: Kysely's builders hold an executor
 * and never import a driver). The pipeline validates the options, then hands the build to one
 * driver: the local one (store → solve → finalize → export) or one that hands it to another engine.
 * Adding a driver is one file here; the pipeline knows none by name but the default.
 */
import type { ImageBuilder } from '../builder/image-builder.js'
import type { BuildOptions, BuildResult } from '../pipeline/options.js'
import type { ResolvedBuildOptions } from '../pipeline/resolve-options.js'
import type { RunSettings } from '../pipeline/run-settings.js'
import type { NamedContext } from '../context/named-contexts.js'
import type { ImageAnnotations } from '../pipeline/annotations.js'
import type { SecretSource } from '../solver/types.js'

/** Where a build is, kept current by the driver: the error gateway names the phase and the step that failed. */
export interface BuildPosition {
  phase: 'prepare' | 'solve' | 'export'
  /** The failing vertex's description (`RUN apt-get …`, `COPY a /app/`). */
  step?: string
  vertex?: string
  /** The Dockerfile line the failing step was written at, for a step imported from a Dockerfile. */
  source?: { readonly file: string; readonly line: number }
}

/** A build whose options the pipeline has checked: what every driver is handed. */
export interface DriverRequest {
  /** The target stage as the caller wrote it (named contexts not applied, ONBUILD triggers not lowered). */
  readonly target: ImageBuilder
  /** The options as given. */
  readonly opts: BuildOptions
  /** The options resolved once (environment, defaults, platform, entitlements). */
  readonly resolved: ResolvedBuildOptions
  readonly tags: readonly string[]
  readonly secrets: Readonly<Record<string, SecretSource>>
  readonly runSettings?: RunSettings
  readonly labels?: Readonly<Record<string, string>>
  readonly annotations?: ImageAnnotations
  readonly contexts?: ReadonlyMap<string, NamedContext>
  readonly position: BuildPosition
  /**
   * Called with whatever the driver must give back when the build ends, however it ends (a store's
   * lease): the pipeline runs them after the result or the error is settled.
   */
  onFinally(release: () => Promise<void>): void
}

/** Runs a checked build. Fields of {@link BuildResult} the driver cannot know stay absent. */
export interface Driver {
  readonly name: string
  build(request: DriverRequest): Promise<BuildResult>
}
