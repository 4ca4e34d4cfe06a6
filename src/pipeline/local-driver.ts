import { connectBuilder } from '../builder/connect.js'
import { buildImage } from './build.js'
import { lowerTriggers } from './onbuild.js'

/**
 * Gives the builder its defaults: `build()` runs the local pipeline and `graph()` lowers ONBUILD
 * triggers of base stages as Dockerfile instructions. The package entry and the CLI call it once
 * when they load; the builder never imports them (builder/connect.ts).
 */
export function connectLocalDriver(): void {
  connectBuilder({ driver: { build: buildImage }, lowerTriggers })
}
