import { fromDockerfile, type FromDockerfileOptions } from '../dockerfile/import.js'
import type { StageDef } from '../graph/stage.js'
import { generateModule } from './generate.js'

export interface ConvertOptions extends FromDockerfileOptions {
  /** A comment for the top of the module. */
  readonly header?: string
  /** Module to import the builder from. @default 'imagesmith' */
  readonly importFrom?: string
}

/**
 * A Dockerfile (text or path) as a TypeScript module: imported with {@link fromDockerfile} (so the
 * module builds what the importer builds), then written by {@link generateModule}.
 */
export function convertDockerfile(textOrPath: string, opts: ConvertOptions = {}): string {
  const imported = fromDockerfile(textOrPath, opts)
  const names = new Map<StageDef, string>()
  for (const [key, b] of Object.entries(imported.stages)) if (!/^\d+$/.test(key)) names.set(b.toStage(), key)
  return generateModule({
    target: imported.target.toStage(),
    names,
    stageList: imported.stageList.map((b) => b.toStage()),
    dockerfile: imported.dockerfile,
    ...(opts.header !== undefined ? { header: opts.header } : {}),
    ...(opts.importFrom !== undefined ? { importFrom: opts.importFrom } : {}),
  })
}
