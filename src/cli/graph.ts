import { toDot, toMermaid } from '../graph/render.js'
import { stageNamesOf } from '../graph/stage-labels.js'
import { parsePlatform } from '../oci/platform.js'
import { defaultCacheDir } from '../store/default-dir.js'
import { UsageError, assertKnownFlags, one, type ParsedArgs } from './args.js'
import { buildArgs, flagCheck, script } from './build-inputs.js'
import { isDockerfileBuild, loadDockerfileBuild } from './build-dockerfile.js'
import type { Io } from './io.js'
import { loadBuildScript } from './load-script.js'
import { lowerTriggers } from '../pipeline/onbuild.js'

/** The graph of a build script, or of a Dockerfile taken as `build` takes it (`-f`, a context, `--platform`). */
export async function graphCommand(args: ParsedArgs, io: Pick<Io, 'out'>): Promise<number> {
  assertKnownFlags(args, ['--target', '--format', '--build-arg', '--file', '--context', '--platform', '--cache-dir'])
  const format = one(args, '--format') ?? 'mermaid'
  if (format !== 'mermaid' && format !== 'dot') throw new UsageError('--format must be mermaid or dot')
  const platform = one(args, '--platform')
  if (platform !== undefined) flagCheck(() => parsePlatform(platform), '--platform')
  const cacheDir = one(args, '--cache-dir') ?? defaultCacheDir()
  const df = isDockerfileBuild(args)
    ? await loadDockerfileBuild(args, { buildArgs: buildArgs(args), ...(platform !== undefined ? { platform } : {}), cacheDir, stdin: process.stdin })
    : undefined
  try {
    if (!df && platform !== undefined) throw new UsageError('--platform applies to a Dockerfile; a build script chooses its own')
    const { builder, stages } = df ? { builder: df.imported.target, stages: df.imported.stages } : await loadBuildScript(script(args), one(args, '--target'), { cacheDir, buildArgs: buildArgs(args) })
    // Named stages label the steps and the stages they copy from, as a build's progress does.
    const g = builder.graph({ buildArgs: buildArgs(args), lowerTriggers, ...(stages ? { stageNames: stageNamesOf(stages) } : {}) })
    io.out(format === 'dot' ? toDot(g) : toMermaid(g))
    return 0
  } finally {
    await df?.cleanup()
  }
}
