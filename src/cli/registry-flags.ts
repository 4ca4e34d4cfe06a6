import { parseMirrorList } from '../registry/endpoints.js'
import type { RegistryOptions } from '../registry/options.js'
import { UsageError, many, type ParsedArgs } from './args.js'

/** Flags every command that reaches a registry takes. */
export const REGISTRY_FLAGS = ['--registry-mirror', '--insecure-registry'] as const

export const REGISTRY_FLAGS_HELP = `Registries: --registry-mirror REGISTRY=HOST[:PORT] (repeatable; pulls only, tried in order before the
registry; default $IMAGESMITH_REGISTRY_MIRRORS) and --insecure-registry HOST[:PORT] (plain HTTP; loopback
registries always are). Credentials come from $DOCKER_CONFIG/config.json (default ~/.docker).`

/** `--registry-mirror docker.io=127.0.0.1:5000` (repeatable), `--insecure-registry host:5000` → registry options. */
export function registryFlags(args: ParsedArgs): RegistryOptions | undefined {
  const mirrorsText = many(args, '--registry-mirror')
  const insecure = many(args, '--insecure-registry')
  if (mirrorsText.length === 0 && insecure.length === 0) return undefined
  const mirrors: Record<string, string[]> = {}
  try {
    for (const m of mirrorsText) {
      for (const [registry, list] of Object.entries(parseMirrorList(m, '--registry-mirror'))) (mirrors[registry] ??= []).push(...list)
    }
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  return { ...(mirrorsText.length ? { mirrors } : {}), ...(insecure.length ? { insecure } : {}) }
}
