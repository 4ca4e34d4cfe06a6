import { inSlot } from '../solver/scheduler.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { importLocalImage, parseLocalName, parseLocalRef } from './local.js'
import type { ImageConfig, Platform } from '../oci/types.js'
import { formatPlatform } from '../oci/platform.js'
import { normalizePlatform, platformMatches } from '../oci/platform.js'
import type { Digest } from '../oci/media-types.js'
import type { ResolvedImage } from './resolve.js'
import { parseReference, type ImageReference } from '../reference/reference.js'
import { pathReferenceError } from './path-hint.js'
import { requireLocalImage, storedImage } from '../store/local-images.js'
import type { BaseImage, ExecContext } from '../solver/types.js'
import { InFlight } from '../util/in-flight.js'
import { storeSlot } from '../store/store.js'
import { canonicalJson } from '../util/canonical-json.js'
import type { PulledImage } from '../registry/pull.js'
import type { RegistryConfig } from '../registry/options.js'
import { createHash } from 'node:crypto'

/**
 * Reads a FROM reference: scratch, a local image (`oci:`, `oci-archive:`, `docker-archive:`) or a
 * registry reference (`debian`, `host:5000/a/b@sha256:…`), pulled through the build's {@link ExecContext.registry}.
 */
export async function loadBase(ref: string, ctx: BaseContext): Promise<BaseImage> {
  if (ref === 'scratch') {
    const config: ImageConfig = {
      architecture: ctx.platform.architecture,
      os: ctx.platform.os,
      ...(ctx.platform.variant ? { variant: ctx.platform.variant } : {}),
      config: {},
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    }
    return { config, layers: [] }
  }
  const local = parseLocalRef(ref)
  const localName = parseLocalName(ref)
  let imported: ResolvedImage
  const platform = formatPlatform(ctx.platform)
  if (localName !== undefined) imported = requirePlatform(await storedImage(ctx.store, (await requireLocalImage(ctx.store, localName)).digest as Digest, ref, ctx.platform), ref, ctx.platform)
  else if (local) {
    imported = await lookups(ctx).run(`local\0${ref}\0${platform}`, (signal) => importLocalImage(local, ref, ctx.store.blobs, ctx.platform, signal), ctx.signal)
  } else {
    // A path is not a name: say which transport reads what is there, rather than that `docker.io//srv/…` is malformed.
    const asPath = await pathReferenceError(ref, ctx.store.blobs.tmpDir)
    if (asPath) throw asPath
    // A malformed name is the caller's mistake (INVALID_REFERENCE); a well-formed one is pulled.
    const parsed = parseReference(ref)
    const named = ctx.pull ? undefined : await localImage(ctx, parsed, ref)
    if (named) {
      ctx.registry?.recordLocal(parsed, named.manifestDigest)
      return { config: named.config, layers: named.layers }
    }
    if (!ctx.registry) {
      throw new ImagesmithError(ErrorCodes.UNKNOWN_FROM, `base image ${parsed.full} needs a registry, and this build has no registry client`, { reference: ref, normalized: parsed.full })
    }
    const registry = ctx.registry
    const pulled = await lookups(ctx).run(
      `registry\0${parsed.full}\0${platform}\0${registryKey(registry.client.config)}`,
      (signal) => inSlot(ctx.limits, 'net', () => registry.pull(parsed, ctx.platform, ctx.store.blobs, signal), signal),
      ctx.signal,
    )
    // A lookup another build started recorded the base in that build's session: this build names it too.
    if ('digest' in pulled) registry.recordLocal(parsed, pulled.digest)
    imported = pulled
  }
  return { config: requirePlatform(imported, ref, ctx.platform).config, layers: imported.layers }
}

/**
 * The image a base reference gave must be one for the build's platform. An index is resolved by
 * its descriptors' platforms; a lone manifest (a layout or archive without an index entry's
 * platform, a registry tag that is no index) says its platform only in its config: an amd64
 * busybox must not become the base of a build asked for arm64, whose config would then say amd64.
 * A config that states no architecture is taken as it comes.
 */
function requirePlatform<T extends { readonly config: ImageConfig }>(image: T, ref: string, platform: Platform): T {
  const c = image.config
  if (!c.architecture || !c.os) return image
  const offered: Platform = { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }
  if (platformMatches(offered, platform)) return image
  const wanted = formatPlatform(platform)
  throw new ImagesmithError(
    ErrorCodes.PLATFORM_NOT_FOUND,
    `${ref} has no image for ${wanted}; it is ${formatPlatform(offered)} only`,
    { reference: ref, platform: wanted, available: [formatPlatform(offered)] },
  )
}

/**
 * Base images being imported or pulled into a store, by reference and platform (and, for a
 * registry, what decides where it is pulled from): two builds in one process resolving the same
 * base at once share one lookup (see {@link InFlight} for how each keeps its own signal).
 */
const LOOKUPS = storeSlot('base lookups in flight', () => new InFlight<ResolvedImage | PulledImage>())

const lookups = (ctx: BaseContext): InFlight<ResolvedImage | PulledImage> => ctx.store.local(LOOKUPS)

/** What makes two sessions' pulls of one reference differ: mirrors, TLS and credentials (hashed, never kept). */
function registryKey(c: RegistryConfig): string {
  return createHash('sha256').update(canonicalJson({ mirrors: c.mirrors, insecure: c.insecure, caFile: c.caFile ?? null, configDir: c.configDir, auths: c.auths })).digest('hex')
}

export type BaseContext = Pick<ExecContext, 'store' | 'platform' | 'signal' | 'registry' | 'limits'> & {
  /** Ask the registry even when the store has a local image of that name (`--pull`). */
  readonly pull?: boolean
}

/**
 * Docker's precedence: a tag a local build recorded (`-t app:1`, `imagesmith tag`) wins over the
 * registry unless the build asks to pull, so one build script feeds another without a registry.
 * A local image of another platform, or whose blobs were pruned, falls through to the registry.
 */
async function localImage(ctx: BaseContext, ref: ImageReference, text: string): Promise<ResolvedImage | undefined> {
  if (ref.tag === undefined || ref.digest !== undefined) return undefined
  const record = await ctx.store.images.get(`${ref.name}:${ref.tag}`)
  if (!record) return undefined
  let image: ResolvedImage
  try {
    image = await storedImage(ctx.store, record.digest as Digest, text, ctx.platform)
  } catch {
    return undefined
  }
  const p = ctx.platform
  if (image.config.os !== p.os || image.config.architecture !== p.architecture) return undefined
  return image
}

/**
 * One resolution per reference and platform for the whole build (the pipeline's ONBUILD pass and FROM
 * share it); `ctx.platform` when none is given.
 */
export function baseResolver(ctx: BaseContext): (ref: string, platform?: Platform) => Promise<BaseImage> {
  const seen = new Map<string, Promise<BaseImage>>()
  return (ref, platform = ctx.platform) => {
    const key = `${formatPlatform(normalizePlatform(platform))}\0${ref}`
    let p = seen.get(key)
    if (!p) {
      p = loadBase(ref, { ...ctx, platform })
      seen.set(key, p)
      // A failed resolution is reported by whoever awaits it; a retry in the same build gets a fresh try.
      p.catch(() => seen.delete(key))
    }
    return p
  }
}

