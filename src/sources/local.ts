import { promises as fsp } from 'node:fs'
import { resolve } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { Platform } from '../oci/types.js'
import type { BlobStore } from '../store/blob-store.js'
import type { LocalImportRequest, LocalRef } from './local-import.js'
import { importDockerArchive } from './docker-archive.js'
import { importOciArchive } from './oci-archive.js'
import { importOciLayout } from './oci-layout.js'
import type { ResolvedImage } from './resolve.js'

export type { LocalImportRequest, LocalRef } from './local-import.js'

const IMPORTERS: Record<LocalRef['transport'], (req: LocalImportRequest) => Promise<ResolvedImage>> = {
  oci: importOciLayout,
  'oci-archive': importOciArchive,
  'docker-archive': importDockerArchive,
}

/** `local:NAME` asks for a locally named image only; `local:5000/app` is a registry host and port. */
export function parseLocalName(ref: string): string | undefined {
  if (!ref.startsWith('local:')) return undefined
  const rest = ref.slice('local:'.length)
  return /^\d+(\/|$)/.test(rest) ? undefined : rest
}

/**
 * Parses `oci:DIR[:TAG]`, `oci-archive:PATH[:TAG]`, `docker-archive:PATH[:NAME:TAG|:@N]` (skopeo's
 * syntax), and `oci:DIR@sha256:…` / `oci-archive:PATH@sha256:…` for one image by digest (what a
 * named context's `oci-layout://DIR@DIGEST` names).
 */
export function parseLocalRef(ref: string): LocalRef | undefined {
  const i = ref.indexOf(':')
  if (i < 0) return undefined
  const transport = ref.slice(0, i) as LocalRef['transport']
  if (!Object.hasOwn(IMPORTERS, transport)) return undefined
  let rest = ref.slice(i + 1)
  const at = transport === 'docker-archive' ? null : /@(sha256:[0-9a-f]{64})$/.exec(rest)
  if (at) rest = rest.slice(0, at.index)
  if (!rest) {
    throw new ImagesmithError(ErrorCodes.INVALID_REFERENCE, `invalid image reference ${JSON.stringify(ref)}: path is empty`, { reference: ref, part: 'path' })
  }
  // An OCI tag holds no '/', so a ':' after the last '/' starts it (`oci:dir:tag`). A docker-archive
  // image name does hold '/' (`localhost/app:1`): as in skopeo, the path ends at the first ':'.
  const colon = transport === 'docker-archive' ? rest.indexOf(':') : rest.lastIndexOf(':')
  if (colon > 0 && (transport === 'docker-archive' || colon > rest.lastIndexOf('/'))) {
    if (at) throw new ImagesmithError(ErrorCodes.INVALID_REFERENCE, `invalid image reference ${JSON.stringify(ref)}: a tag and a digest together`, { reference: ref, part: 'digest' })
    return { transport, path: resolve(rest.slice(0, colon)), tag: rest.slice(colon + 1) }
  }
  return at ? { transport, path: resolve(rest), digest: at[1]! } : { transport, path: resolve(rest) }
}

/** Brings a local base image's blobs into the store (each verified against its digest) and resolves it. */
export async function importLocalImage(ref: LocalRef, refText: string, blobs: BlobStore, platform: Platform, signal?: AbortSignal): Promise<ResolvedImage> {
  try {
    await fsp.stat(ref.path)
  } catch (e) {
    throw new ImagesmithError(ErrorCodes.UNKNOWN_FROM, `base image not found: ${ref.path}`, { reference: refText, path: ref.path }, { cause: e })
  }
  return IMPORTERS[ref.transport]({ ref, refText, blobs, platform, signal })
}
