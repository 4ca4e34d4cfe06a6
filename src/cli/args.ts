/** A usage mistake on the command line: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

export interface ParsedArgs {
  readonly command: string | undefined
  readonly positionals: string[]
  readonly flags: Map<string, string[]>
}

/** Flags that take no value. Everything else takes one (`--flag v` or `--flag=v`). */
const BOOLEAN = new Set(['--no-cache', '--print', '--help', '-h', '--version', '--json', '--quiet', '-q', '--load', '--push', '--password-stdin', '--pull', '--all', '--force', '--attestations', '--layers', '--ci'])
const ALIASES: Record<string, string> = { '-t': '--tag', '-o': '--output', '-f': '--file', '-q': '--quiet', '-h': '--help', '-u': '--username', '-p': '--password' }

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positionals: string[] = []
  const flags = new Map<string, string[]>()
  let command: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (arg.startsWith('-') && arg !== '-') {
      const eq = arg.indexOf('=')
      let name = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg
      name = ALIASES[name] ?? name
      let value: string
      if (BOOLEAN.has(name) || BOOLEAN.has(arg)) {
        if (eq > 0 && arg.startsWith('--')) throw new UsageError(`${name} takes no value`)
        value = 'true'
      } else if (eq > 0 && arg.startsWith('--')) {
        value = arg.slice(eq + 1)
      } else {
        const next = argv[i + 1]
        if (next === undefined) throw new UsageError(`${arg} needs a value`)
        value = next
        i++
      }
      const list = flags.get(name) ?? []
      list.push(value)
      flags.set(name, list)
    } else if (command === undefined) {
      command = arg
    } else {
      positionals.push(arg)
    }
  }
  return { command, positionals, flags }
}

export function one(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name)
  if (v && v.length > 1) throw new UsageError(`${name} given more than once`)
  return v?.[0]
}

export function many(args: ParsedArgs, name: string): string[] {
  return args.flags.get(name) ?? []
}

export function assertKnownFlags(args: ParsedArgs, known: readonly string[]): void {
  for (const name of args.flags.keys()) if (!known.includes(name)) throw new UsageError(`unknown flag ${name}`)
}

/** `k=v,k2=v2` as buildx writes `--output` and `--secret`. */
export function parseCsvPairs(text: string, what: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of text.split(',')) {
    const eq = part.indexOf('=')
    if (eq <= 0) throw new UsageError(`invalid ${what} ${JSON.stringify(text)}: expected key=value pairs separated by ','`)
    out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  return out
}

const SCRIPT = /\.(ts|mts|cts|js|mjs|cjs)$/i

/**
 * A Dockerfile build when `-f` is given or the argument is no build script: a Dockerfile (by its
 * name), a directory, a tarball or `-` (then it is the context, as for `docker build`).
 */
export function isDockerfileBuild(args: ParsedArgs): boolean {
  if (args.flags.has('--file')) return true
  const arg = args.positionals[0]
  return arg !== undefined && !SCRIPT.test(arg)
}
