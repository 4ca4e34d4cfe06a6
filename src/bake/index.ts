/** Bake: files and build scripts to resolved targets, `--set`, `--print`, and `bake()`, many targets in one solve. */
export type { BakeEntry, BakeGroup, BakePlan, BakeSecret, BakeSsh, BakeTarget } from './types.js'
export { parseBakeFiles, MAX_BAKE_FILE_BYTES, type BakeConfig, type BakeFileSource, type ParseBakeOptions } from './parse-file.js'
export { resolveBake, expandGroup, MAX_BAKE_DEPTH, type ResolveBakeOptions } from './resolve.js'
export { parseSets, overridesByTarget, SET_KEYS, type BakeSet } from './overrides.js'
export { bakePrintJson, bakePrintObject, printTarget } from './print.js'
export { scriptTargets, selectScriptTargets, type ScriptTarget, type ScriptTargetSettings, type SelectScriptTargetsOptions } from './script-targets.js'
export { bake, targetOptions, type BakeOptions, type BakeResult, type BakeTargetOptions } from './build.js'
