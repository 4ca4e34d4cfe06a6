import { toDockerfile } from '../dockerfile/print.js'
import { UsageError, assertKnownFlags, one, type ParsedArgs } from './args.js'
import { defaultCacheDir } from '../store/default-dir.js'
import { loadBuildScript } from './load-script.js'

export const DOCKERFILE_HELP = '  imagesmith dockerfile <build.ts> [--target NAME] [--local-refs comment|error]   (the builder as a Dockerfile, on stdout)'

/**
 * `imagesmith dockerfile build.ts`: the script's builder as a Dockerfile on stdout.
 * `--local-refs error` refuses local image references (`oci-archive:…`) that only imagesmith reads.
 */
export async function dockerfileCommand(args: ParsedArgs, io: { out: (s: string) => void }): Promise<number> {
  assertKnownFlags(args, ['--target', '--local-refs'])
  const localRefs = one(args, '--local-refs') ?? 'comment'
  if (localRefs !== 'comment' && localRefs !== 'error') throw new UsageError(`--local-refs must be comment or error, got ${JSON.stringify(localRefs)}`)
  const path = args.positionals[0]
  if (!path) throw new UsageError('dockerfile needs a build script path')
  if (args.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[1])}`)
  const { builder } = await loadBuildScript(path, one(args, '--target'), { cacheDir: defaultCacheDir() })
  io.out(toDockerfile(builder, { localRefs }))
  return 0
}
