import { ErrorCodes, ImagesmithError } from '../errors.js'

/**
 * Which layers an export writes: `min` those the final image holds, `max` also every intermediate
 * stage's (a multi-stage build is then fully cached). @default 'min'
 */
export type CacheExportMode = 'min' | 'max'

/** Where a build reads cache from (`--cache-from`), as buildx's types. */
export type CacheImportSpec =
  /** A cache manifest at `ref` (as `type=registry` exported it), or an image pushed with an inline cache. */
  | { readonly type: 'registry'; readonly ref: string }
  /** An OCI layout directory as `type=local` exported it; `tag` picks its index.json entry. @default tag 'latest' */
  | { readonly type: 'local'; readonly src: string; readonly tag?: string }

/** Where a build writes its cache (`--cache-to`), as buildx's types. */
export type CacheExportSpec =
  | { readonly type: 'registry'; readonly ref: string; readonly mode?: CacheExportMode }
  /** An OCI layout at `dest`, index.json tagged `tag`; blobs the new export does not name are removed. @default tag 'latest' */
  | { readonly type: 'local'; readonly dest: string; readonly tag?: string; readonly mode?: CacheExportMode }
  /** The records in the pushed image's config (the final image's layers only: mode min). */
  | { readonly type: 'inline' }

function bad(option: string, why: string): ImagesmithError {
  return new ImagesmithError(ErrorCodes.CACHE_OPTION_INVALID, `${option}: ${why}`, { option })
}

const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 4096

/** Checks `cacheFrom` as given to build(); a bad entry is CACHE_OPTION_INVALID naming it. */
export function checkCacheImports(specs: readonly CacheImportSpec[] | undefined): readonly CacheImportSpec[] {
  if (specs === undefined) return []
  if (!Array.isArray(specs) || specs.length > 32) throw bad('cacheFrom', 'expected a list of at most 32 caches')
  for (const [i, s] of specs.entries()) {
    const o = `cacheFrom[${i}]`
    if (s?.type === 'registry') {
      if (!str(s.ref)) throw bad(o, 'type registry needs a ref')
    } else if (s?.type === 'local') {
      if (!str(s.src)) throw bad(o, 'type local needs src (a directory)')
      if (s.tag !== undefined && !str(s.tag)) throw bad(o, 'tag must be a non-empty string')
    } else throw bad(o, `unknown type ${JSON.stringify((s as { type?: unknown })?.type)} (registry or local)`)
  }
  return specs
}

/** Checks `cacheTo` as given to build(); a bad entry is CACHE_OPTION_INVALID naming it. */
export function checkCacheExports(specs: readonly CacheExportSpec[] | undefined): readonly CacheExportSpec[] {
  if (specs === undefined) return []
  if (!Array.isArray(specs) || specs.length > 32) throw bad('cacheTo', 'expected a list of at most 32 caches')
  for (const [i, s] of specs.entries()) {
    const o = `cacheTo[${i}]`
    const mode = (s as { mode?: unknown }).mode
    if (s?.type === 'inline') {
      if (mode !== undefined && mode !== 'min') throw bad(o, 'type inline takes mode min only (the records name the image\'s own layers)')
      continue
    }
    if (mode !== undefined && mode !== 'min' && mode !== 'max') throw bad(o, `mode ${JSON.stringify(mode)}: min or max`)
    if (s?.type === 'registry') {
      if (!str(s.ref)) throw bad(o, 'type registry needs a ref')
    } else if (s?.type === 'local') {
      if (!str(s.dest)) throw bad(o, 'type local needs dest (a directory)')
      if (s.tag !== undefined && !str(s.tag)) throw bad(o, 'tag must be a non-empty string')
    } else throw bad(o, `unknown type ${JSON.stringify((s as { type?: unknown })?.type)} (registry, local or inline)`)
  }
  return specs
}

/**
 * One `--cache-from` value: buildx's csv (`type=registry,ref=R`, `type=local,src=DIR`), or a bare
 * reference (`--cache-from REF` is `type=registry,ref=REF`). `pairs` is the csv parsed, absent for a bare ref.
 */
export function cacheImportOf(text: string, pairs: ReadonlyMap<string, string> | undefined): CacheImportSpec {
  if (!pairs) return { type: 'registry', ref: text }
  const type = pairs.get('type') ?? 'registry'
  known(pairs, type === 'local' ? ['type', 'src', 'tag'] : ['type', 'ref'], `--cache-from ${text}`)
  const spec = type === 'local' ? { type, src: pairs.get('src') ?? '', ...(pairs.has('tag') ? { tag: pairs.get('tag')! } : {}) } : { type, ref: pairs.get('ref') ?? '' }
  return checkCacheImports([spec as CacheImportSpec])[0]!
}

/** One `--cache-to` value in buildx's csv (`type=registry,ref=R,mode=max`, `type=local,dest=DIR`, `type=inline`). */
export function cacheExportOf(text: string, pairs: ReadonlyMap<string, string>): CacheExportSpec {
  const type = pairs.get('type') ?? 'registry'
  const mode = pairs.has('mode') ? { mode: pairs.get('mode') } : {}
  const allowed = type === 'local' ? ['type', 'dest', 'tag', 'mode'] : type === 'inline' ? ['type', 'mode'] : ['type', 'ref', 'mode']
  known(pairs, allowed, `--cache-to ${text}`)
  const spec =
    type === 'local'
      ? { type, dest: pairs.get('dest') ?? '', ...(pairs.has('tag') ? { tag: pairs.get('tag')! } : {}), ...mode }
      : type === 'inline'
        ? { type, ...mode }
        : { type, ref: pairs.get('ref') ?? '', ...mode }
  return checkCacheExports([spec as CacheExportSpec])[0]!
}

/** buildx ignores some keys (compression, oci-mediatypes, ignore-error…); this build refuses what it would not honour. */
function known(pairs: ReadonlyMap<string, string>, allowed: readonly string[], option: string): void {
  for (const k of pairs.keys()) if (!allowed.includes(k)) throw bad(option, `unknown key ${JSON.stringify(k)} (${allowed.join(', ')})`)
}
