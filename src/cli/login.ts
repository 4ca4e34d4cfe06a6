import { resolveRegistryOptions } from '../pipeline/resolve-options.js'
import { login, logout } from '../registry/login.js'
import { UsageError, assertKnownFlags, one, type ParsedArgs } from './args.js'

export interface LoginIo {
  out: (s: string) => void
  err: (s: string) => void
  /** Where `--password-stdin` reads from. @default process.stdin */
  readonly stdin?: NodeJS.ReadableStream
}

export const LOGIN_HELP = `  imagesmith login [REGISTRY] -u USER (--password-stdin | -p PASS) [--config DIR] [--insecure-registry HOST]...
  imagesmith logout [REGISTRY] [--config DIR]`

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = ''
  for await (const c of stream as AsyncIterable<Buffer | string>) text += typeof c === 'string' ? c : c.toString('utf8')
  return text
}

function target(args: ParsedArgs): string | undefined {
  if (args.positionals.length > 1) throw new UsageError(`${args.command} takes at most one registry, got ${args.positionals.join(' ')}`)
  return args.positionals[0]
}

/** `docker login`: checks the credentials against the registry, then stores them as docker does. */
export async function loginCommand(args: ParsedArgs, io: LoginIo, signal?: AbortSignal): Promise<number> {
  assertKnownFlags(args, ['--username', '--password', '--password-stdin', '--config', '--insecure-registry'])
  const registry = target(args)
  const username = one(args, '--username')
  const fromStdin = args.flags.has('--password-stdin')
  let password = one(args, '--password')
  if (!username) throw new UsageError('login needs -u USER (there is no interactive prompt)')
  if (fromStdin && password !== undefined) throw new UsageError('--password and --password-stdin are mutually exclusive')
  if (fromStdin) password = (await readAll(io.stdin ?? process.stdin)).replace(/\r?\n$/, '')
  else if (password !== undefined) io.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n')
  if (!password) throw new UsageError('login needs a password: --password-stdin or -p PASS')
  const config = resolveRegistryOptions({ ...configDir(args), insecure: args.flags.get('--insecure-registry') ?? [] })
  const r = await login(registry, username, password, { config, signal })
  io.out(`Login Succeeded${r.helper ? ` (stored in docker-credential-${r.helper})` : ''}\n`)
  return 0
}

export async function logoutCommand(args: ParsedArgs, io: LoginIo): Promise<number> {
  assertKnownFlags(args, ['--config'])
  const config = resolveRegistryOptions(configDir(args))
  const r = await logout(target(args), { config })
  io.out(r.removed ? `Removing login credentials for ${r.key}\n` : `Not logged in to ${r.key}\n`)
  return 0
}

function configDir(args: ParsedArgs): { configDir?: string } {
  const dir = one(args, '--config')
  return dir ? { configDir: dir } : {}
}
