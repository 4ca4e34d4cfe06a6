import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Step } from '../graph/stage.js'
import type { BuildOptions, BuildResult } from '../pipeline/options.js'
import type { ImageBuilder } from './image-builder.js'

/** What runs a builder's build: the local pipeline (store → solve → finalize → export) by default. */
export interface BuildDriver {
  build(img: ImageBuilder, opts: BuildOptions): Promise<BuildResult>
}

/** ONBUILD trigger text (one Dockerfile instruction each, e.g. `RUN make`) as steps. */
export type TriggerLowering = (triggers: readonly string[]) => readonly Step[]

/**
 * The builder only appends IR: the engine behind {@link ImageBuilder.build} and the Dockerfile parser
 * that lowers ONBUILD triggers are layers above it, which import it, so it holds them as given rather
 * than importing them (as Kysely's builders hold an executor and never import a driver). The package
 * entry connects the local pipeline when it loads; a builder loaded without it has neither.
 */
interface Connection {
  readonly driver: BuildDriver
  readonly lowerTriggers: TriggerLowering
}

let connection: Connection | undefined

/** @internal Called by the package entry (and the CLI) with the local pipeline. */
export function connectBuilder(c: Connection): void {
  connection = c
}

export function buildDriver(): BuildDriver {
  if (!connection) throw notConnected('build() needs the build pipeline', {})
  return connection.driver
}

/** The connected lowering, or one that says none is connected when a trigger needs it. */
export function triggerLowering(): TriggerLowering {
  return connection?.lowerTriggers ?? ((triggers) => {
    throw notConnected('ONBUILD triggers of a base stage need a Dockerfile parser', { triggers }, ', or pass graph({ lowerTriggers })')
  })
}

function notConnected(what: string, details: Record<string, unknown>, or = ''): ImagesmithError {
  return new ImagesmithError(ErrorCodes.BUILDER_NOT_CONNECTED, `${what}, which this builder was not given: import it from the package entry ('imagesmith')${or}`, details)
}
