import { ErrorCodes, ImagesmithError, InvalidArgumentError } from '../errors.js'
import { formatPlatform, parsePlatform } from '../oci/platform.js'
import type { Platform } from '../oci/types.js'

/**
 * OCI annotations by where they land (buildx `--annotation`). A single-platform build makes one
 * manifest; an OCI archive or layout names it in index.json, which is the index here.
 */
export interface ImageAnnotations {
  /** The image manifest's `annotations` (part of the manifest digest). */
  readonly manifest: Readonly<Record<string, string>>
  /** index.json's own `annotations` (OCI archive, layout and the archive the `docker` output streams). */
  readonly index: Readonly<Record<string, string>>
  /**
   * The annotations of the top manifest's descriptor in index.json: the image's (`manifest-descriptor`)
   * on a single-platform build, the image index's (`index-descriptor`) on a multi-platform one.
   */
  readonly manifestDescriptor: Readonly<Record<string, string>>
  /**
   * A multi-platform build's, as buildx places them: each platform's manifest (`manifest`, or
   * `manifest[os/arch]` for that one alone) and its descriptor in the image index
   * (`manifest-descriptor`), and the image index's own (`index`, part of its digest).
   */
  readonly multi?: {
    readonly platforms: Readonly<Record<string, { readonly manifest: Readonly<Record<string, string>>; readonly descriptor: Readonly<Record<string, string>> }>>
    readonly index: Readonly<Record<string, string>>
  }
}

const TYPES = {
  manifest: 'manifest',
  index: 'index',
  'manifest-descriptor': 'manifestDescriptor',
  'index-descriptor': undefined,
} as const satisfies Record<string, keyof ImageAnnotations | undefined>
type AnnotationType = keyof typeof TYPES

/** Outputs with no index.json: a pushed single manifest is all the registry gets. */
const NO_INDEX = new Set(['registry'])

const bad = (text: unknown, why: string) =>
  new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `invalid annotation ${JSON.stringify(text)}: ${why}`, { option: 'annotations', value: text })

/**
 * `KEY=VALUE` or `TYPE[,TYPE…]:KEY=VALUE`, each TYPE optionally `TYPE[os/arch]`, as buildx's
 * ParseAnnotations reads it: the value is what follows the first `=`, the types what precedes the
 * first `:` before it (so a key with a `:` needs a type prefix).
 */
export function parseAnnotation(text: string): { targets: { type: AnnotationType; platform?: string }[]; key: string; value: string } {
  if (typeof text !== 'string') throw bad(text, 'a string TYPE:KEY=VALUE expected')
  const eq = text.indexOf('=')
  if (eq < 0) throw bad(text, 'KEY=VALUE expected')
  const left = text.slice(0, eq)
  const value = text.slice(eq + 1)
  const colon = left.indexOf(':')
  const key = colon < 0 ? left : left.slice(colon + 1)
  if (key === '' || /\s/.test(key)) throw bad(text, 'the key is empty or has white space')
  if (colon < 0) return { targets: [{ type: 'manifest' }], key, value }
  const targets = left.slice(0, colon).split(',').map((t) => {
    const m = /^([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?$/.exec(t)
    if (!m) throw bad(text, `type ${JSON.stringify(t)}: a type and an optional [os/arch] expected`)
    const type = m[1]!
    if (!Object.hasOwn(TYPES, type)) throw bad(text, `unknown type ${JSON.stringify(type)} (${Object.keys(TYPES).join(', ')})`)
    if (m[2] === undefined) return { type: type as AnnotationType }
    try {
      return { type: type as AnnotationType, platform: formatPlatform(parsePlatform(m[2])) }
    } catch {
      throw bad(text, `invalid platform ${JSON.stringify(m[2])}`)
    }
  })
  return { targets, key, value }
}

/**
 * The build's annotations by destination, checked before anything runs. A platform qualifier that is
 * not one of this build's platforms fails (BuildKit: "no platform … found in source"). On a
 * single-platform build `index-descriptor` is refused: it annotates the descriptor of a nested index
 * in index.json, and a single-platform image has none (index.json itself is the index; BuildKit
 * refuses index annotations on a single-platform export too). A `registry` output refuses what it
 * has no place for: a pushed single manifest has no index around it, a pushed index no index.json;
 * dropping what was asked for would go unnoticed.
 */
export function imageAnnotations(list: readonly string[] | undefined, platforms: Platform | readonly Platform[], outputType: string | undefined): ImageAnnotations | undefined {
  if (list === undefined) return undefined
  if (!Array.isArray(list)) throw bad(list, 'a list of TYPE:KEY=VALUE strings expected')
  const built = (Array.isArray(platforms) ? platforms : [platforms as Platform]).map(formatPlatform)
  if (built.length > 1) return multiAnnotations(list, built, outputType)
  const out = { manifest: {} as Record<string, string>, index: {} as Record<string, string>, manifestDescriptor: {} as Record<string, string> }
  for (const text of list) {
    const { targets, key, value } = parseAnnotation(text)
    for (const t of targets) {
      if (t.platform !== undefined && t.platform !== built[0]) {
        throw bad(text, `platform ${t.platform} is not built (this build is for ${built[0]})`)
      }
      const field = TYPES[t.type]
      if (field === undefined) {
        throw new ImagesmithError(ErrorCodes.ANNOTATION_NOT_STORABLE, `annotation ${JSON.stringify(text)}: index-descriptor annotates the descriptor of a nested index, and a single-platform image has none (index.json is the index: use index:${key}=…)`, { annotation: text, type: t.type })
      }
      if (field !== 'manifest' && outputType !== undefined && NO_INDEX.has(outputType)) {
        throw new ImagesmithError(ErrorCodes.ANNOTATION_NOT_STORABLE, `annotation ${JSON.stringify(text)}: a ${outputType} output pushes one manifest and no index, so a ${t.type} annotation has nowhere to go (use manifest:${key}=…, or an oci / oci-layout output)`, { annotation: text, type: t.type, output: outputType })
      }
      out[field][key] = value
    }
  }
  return out
}

/** A multi-platform build's annotations (see {@link ImageAnnotations.multi}); `index-descriptor` is index.json's descriptor of the index. */
function multiAnnotations(list: readonly string[], built: readonly string[], outputType: string | undefined): ImageAnnotations {
  const platforms = Object.fromEntries(built.map((p) => [p, { manifest: {} as Record<string, string>, descriptor: {} as Record<string, string> }]))
  const index: Record<string, string> = {}
  const manifest: Record<string, string> = {}
  const indexDescriptor: Record<string, string> = {}
  for (const text of list) {
    const { targets, key, value } = parseAnnotation(text)
    for (const t of targets) {
      if (t.platform !== undefined && !built.includes(t.platform)) {
        throw bad(text, `platform ${t.platform} is not built (this build is for ${built.join(', ')})`)
      }
      if (t.type === 'index' || t.type === 'index-descriptor') {
        if (t.platform !== undefined) throw bad(text, `${t.type} annotates the one index of every platform: no [${t.platform}]`)
        if (t.type === 'index-descriptor' && outputType !== undefined && NO_INDEX.has(outputType)) {
          throw new ImagesmithError(ErrorCodes.ANNOTATION_NOT_STORABLE, `annotation ${JSON.stringify(text)}: a ${outputType} output pushes the index itself and no index.json, so an index-descriptor annotation has nowhere to go (use index:${key}=…, or an oci / oci-layout output)`, { annotation: text, type: t.type, output: outputType })
        }
        ;(t.type === 'index' ? index : indexDescriptor)[key] = value
        continue
      }
      const field = t.type === 'manifest' ? 'manifest' : 'descriptor'
      if (field === 'manifest' && t.platform === undefined) manifest[key] = value
      for (const p of t.platform !== undefined ? [t.platform] : built) platforms[p]![field][key] = value
    }
  }
  return { manifest, index: {}, manifestDescriptor: indexDescriptor, multi: { platforms, index } }
}
