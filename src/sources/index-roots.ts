import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Descriptor, ImageIndex } from '../oci/types.js'
import type { LocalRef } from './local-import.js'
import { baseInvalid } from './resolve.js'

const REF_NAME = 'org.opencontainers.image.ref.name'
const CONTAINERD_NAME = 'io.containerd.image.name'

function matchesTag(d: Descriptor, tag: string): boolean {
  const a = d.annotations ?? {}
  const full = a[CONTAINERD_NAME]
  return a[REF_NAME] === tag || full === tag || (full !== undefined && full.endsWith(`:${tag}`))
}

export function parseIndex(bytes: Buffer | string, refText: string): ImageIndex {
  let index: ImageIndex
  try {
    index = JSON.parse(bytes.toString()) as ImageIndex
  } catch (e) {
    throw baseInvalid(refText, 'index.json is not valid JSON', {}, e)
  }
  if (!index || !Array.isArray(index.manifests)) throw baseInvalid(refText, 'index.json has no manifests list')
  return index
}

/**
 * The descriptors of a layout's index.json that the reference's tag (or digest) names, all of them
 * without either. `byDigest` answers for a digest index.json does not list (a manifest inside a nested index).
 */
export function taggedRoots(index: ImageIndex, ref: LocalRef, refText: string, byDigest?: Descriptor): readonly Descriptor[] {
  const digest = 'digest' in ref ? ref.digest : undefined
  if (digest !== undefined) {
    const listed = index.manifests.filter((d) => d.digest === digest)
    if (listed.length > 0) return listed
    if (byDigest) return [byDigest]
    throw new ImagesmithError(ErrorCodes.UNKNOWN_FROM, `no image ${digest} in ${ref.path}`, { reference: refText, path: ref.path, digest })
  }
  const roots = ref.tag ? index.manifests.filter((d) => matchesTag(d, ref.tag!)) : index.manifests
  if (roots.length === 0) {
    const tags = index.manifests.map((d) => d.annotations?.[REF_NAME]).filter(Boolean)
    throw new ImagesmithError(
      ErrorCodes.UNKNOWN_FROM,
      `no image${ref.tag ? ` tagged ${ref.tag}` : ''} in ${ref.path}` + (tags.length ? ` (it has ${tags.join(', ')})` : ''),
      { reference: refText, path: ref.path, available: tags },
    )
  }
  return roots
}
