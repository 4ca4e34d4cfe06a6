/**
 * The context listing (context/tree-probe.ts) of a build, started before the build script or
 * Dockerfile is loaded: find runs beside the loading, and its listing is ready when the first COPY
 * asks for it. The launcher (bin/imagesmith.js) calls {@link probeEarly} from its own small bundle
 * entry before the CLI bundle loads; the build command calls {@link probeContextEarly} again, which
 * starts nothing when that probe is there.
 */
import { statSync } from 'node:fs'
import { isDockerfileBuild, one, parseArgs, type ParsedArgs } from './args.js'
import { startTreeProbe } from '../context/tree-probe.js'

/**
 * Not for an engine's build, which sends the context instead. A context that is not a directory (a
 * tarball, stdin) has its probe started by the build itself, if at all.
 */
export function probeContextEarly(args: ParsedArgs): void {
  if (one(args, '--engine') !== undefined || args.flags.has('--help')) return
  const dir = (isDockerfileBuild(args) ? args.positionals[0] : undefined) ?? one(args, '--context') ?? '.'
  try {
    if (statSync(dir).isDirectory()) startTreeProbe(dir)
  } catch {
    // Not there: the build says so in its own words.
  }
}

/** The same from the raw arguments of any command: only a `build` that parses starts a probe. */
export function probeEarly(argv: readonly string[]): void {
  try {
    const args = parseArgs(argv)
    if (args.command === 'build') probeContextEarly(args)
  } catch {
    // Bad arguments are the command's to report.
  }
}
