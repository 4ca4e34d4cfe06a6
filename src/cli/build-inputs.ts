import { UsageError, many, type ParsedArgs } from './args.js'

// What `build` and `graph` both read: the script path, --build-arg, and flag values checked up front.

export function script(args: ParsedArgs): string {
  const path = args.positionals[0]
  if (!path) throw new UsageError(`${args.command} needs a build script path`)
  if (args.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[1])}`)
  return path
}

export function buildArgs(args: ParsedArgs): Record<string, string> {
  const out: Record<string, string> = {}
  for (const kv of many(args, '--build-arg')) {
    const eq = kv.indexOf('=')
    if (eq === 0) throw new UsageError(`invalid --build-arg ${JSON.stringify(kv)}`)
    // `--build-arg NAME` takes the value from the environment, as docker does.
    if (eq < 0) {
      const v = process.env[kv]
      if (v !== undefined) out[kv] = v
    } else out[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  return out
}

/** A flag value that fails its parser is a usage error (exit 2), named after the flag. */
export function flagCheck(fn: () => unknown, flag: string): void {
  try {
    fn()
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`)
  }
}
