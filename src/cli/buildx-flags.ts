import { dirname } from 'node:path'
import { mkdir } from 'node:fs/promises'
import type { BuildOptions, BuildResult } from '../pipeline/options.js'
import { parseExtraHost, parseShmSize, parseUlimit } from '../pipeline/run-settings.js'
import { parseAnnotation } from '../pipeline/annotations.js'
import { writeFileAtomic } from '../store/atomic-write.js'
import { UsageError, many, one, parseCsvPairs, type ParsedArgs } from './args.js'
import { cacheExportOf, cacheImportOf } from '../cache-share/options.js'

/** `docker buildx build` flags that map onto build options one to one. */
export const BUILDX_FLAGS = ['--label', '--iidfile', '--add-host', '--ulimit', '--shm-size', '--annotation', '--build-context', '--cache-to', '--cache-from'] as const

export const BUILDX_FLAGS_HELP = `As buildx: --label KEY=VALUE (repeatable; image config labels), --iidfile PATH (writes the image ID:
the config digest, as buildx does whenever the exporter reports one), --add-host HOST:IP (repeatable; RUN's
/etc/hosts), --ulimit NAME=SOFT[:HARD] (repeatable; RUN's limits), --shm-size SIZE (RUN's /dev/shm, e.g. 128m),
--annotation [TYPE[,TYPE…]:]KEY=VALUE (repeatable; TYPE manifest (default), index or manifest-descriptor, the
last two in an oci / oci-layout output's index.json), --build-context NAME=VALUE (repeatable; VALUE a directory,
docker-image://REF or oci-layout://DIR[:TAG|@DIGEST]: FROM NAME, COPY --from=NAME, RUN --mount=from=NAME and a
stage named NAME read it), --cache-to type=registry,ref=REF[,mode=min|max] | type=local,dest=DIR[,tag=T][,mode=…] |
type=inline (repeatable; the build's cache, exported after the image), --cache-from type=registry,ref=REF |
type=local,src=DIR[,tag=T] | REF (repeatable; import only from refs you trust).`

/** The options these flags give; each value is checked here, so a bad one is a usage error (exit 2). */
export function buildxOptions(args: ParsedArgs): Pick<BuildOptions, 'labels' | 'addHosts' | 'ulimits' | 'shmSize' | 'annotations' | 'buildContexts' | 'cacheFrom' | 'cacheTo'> {
  const labels: Record<string, string> = {}
  for (const kv of many(args, '--label')) {
    const eq = kv.indexOf('=')
    if (eq === 0) throw new UsageError(`--label ${kv}: KEY=VALUE expected`)
    // buildx: `--label KEY` sets an empty value.
    if (eq < 0) labels[kv] = ''
    else labels[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  const addHosts = many(args, '--add-host')
  const ulimits = many(args, '--ulimit')
  const shmSize = one(args, '--shm-size')
  for (const h of addHosts) usage(() => parseExtraHost(h), '--add-host')
  for (const u of ulimits) usage(() => parseUlimit(u), '--ulimit')
  if (shmSize !== undefined) usage(() => parseShmSize(shmSize), '--shm-size')
  const annotations = many(args, '--annotation')
  for (const a of annotations) usage(() => parseAnnotation(a), '--annotation')
  return {
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    ...(addHosts.length > 0 ? { addHosts } : {}),
    ...(ulimits.length > 0 ? { ulimits } : {}),
    ...(shmSize !== undefined ? { shmSize } : {}),
    ...(annotations.length > 0 ? { annotations } : {}),
    ...buildContexts(args),
    ...cacheFlags(args),
  }
}

/** `--cache-from` / `--cache-to` in buildx's csv; a bare `--cache-from REF` is `type=registry,ref=REF`. */
export function cacheFlags(args: ParsedArgs): Pick<BuildOptions, 'cacheFrom' | 'cacheTo'> {
  const cacheFrom = many(args, '--cache-from').map((t) => usage(() => cacheImportOf(t, t.includes('=') ? parseCsvPairs(t, '--cache-from') : undefined), '--cache-from'))
  const cacheTo = many(args, '--cache-to').map((t) => usage(() => cacheExportOf(t, parseCsvPairs(t, '--cache-to')), '--cache-to'))
  return { ...(cacheFrom.length > 0 ? { cacheFrom } : {}), ...(cacheTo.length > 0 ? { cacheTo } : {}) }
}

/**
 * `--build-context NAME=VALUE` as a record; only the shape is checked here; the value's form is the
 * build's to judge, so an unsupported source is its typed error (BUILD_CONTEXT_UNSUPPORTED).
 */
export function buildContexts(args: ParsedArgs): Pick<BuildOptions, 'buildContexts'> {
  const out: Record<string, string> = {}
  for (const kv of many(args, '--build-context')) {
    const eq = kv.indexOf('=')
    if (eq <= 0 || eq === kv.length - 1) throw new UsageError(`--build-context ${kv}: NAME=VALUE expected`)
    out[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  return Object.keys(out).length > 0 ? { buildContexts: out } : {}
}

/**
 * `--iidfile`: buildx writes the exporter's config digest when it has one (the image ID `docker
 * images` shows), else the manifest digest: the local driver always has the config.
 */
export async function writeIidFile(args: ParsedArgs, result: BuildResult): Promise<void> {
  const path = one(args, '--iidfile')
  if (path === undefined) return
  await mkdir(dirname(path), { recursive: true })
  await writeFileAtomic(path, result.configDigest ?? result.digest)
}

function usage<T>(fn: () => T, flag: string): T {
  try {
    return fn()
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`)
  }
}
