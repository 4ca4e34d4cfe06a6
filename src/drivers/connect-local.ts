import { connectBuilder } from '../builder/connect.js'
import { buildImage } from '../pipeline/build.js'
import { lowerTriggers } from '../pipeline/onbuild.js'
import { localDriver } from './local.js'
import { dockerEngineDriver } from './docker-engine.js'

/**
 * Gives the builder its defaults: `build()` runs the pipeline with the local driver unless the
 * options name another (`driver`, or `engine` for an existing Docker Engine), and `graph()` lowers
 * ONBUILD triggers of base stages as Dockerfile instructions. The package entry and the CLI call it
 * once when they load; neither the builder nor the pipeline imports a driver (builder/connect.ts).
 */
export function connectLocalDriver(): void {
  connectBuilder({ driver: { build: (img, opts) => buildImage(img, opts, opts.engine !== undefined ? dockerEngineDriver : localDriver) }, lowerTriggers })
}
