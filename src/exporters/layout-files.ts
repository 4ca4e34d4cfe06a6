import type { Digest } from '../oci/media-types.js'
import { MediaType } from '../oci/media-types.js'
import type { Artifact } from '../artifacts/artifact.js'
import type { FinalImage } from '../oci/types.js'
import { parseImageName } from '../reference/reference.js'
import type { Descriptor, ImageIndex } from '../oci/types.js'

/** `oci-layout` must be exactly this: containerd refuses other versions. */
export const OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}'

export const blobName = (d: Digest) => `blobs/sha256/${d.slice(7)}`

/**
 * index.json descriptors: one per tag, named the way Docker 25's `docker save` and containerd do
 * (`io.containerd.image.name` = full reference, `org.opencontainers.image.ref.name` = the tag), so
 * podman, ctr and skopeo all find the name. No tags: one unnamed descriptor. For an image index
 * each descriptor points at the index, as BuildKit's oci exporter writes a multi-platform build.
 */
export function indexDescriptors(artifact: Artifact, tags: readonly string[], annotations: Readonly<Record<string, string>> = {}): Descriptor[] {
  const mediaType = artifact.kind === 'index' ? MediaType.OciIndex : MediaType.OciManifest
  const base = { mediaType, digest: artifact.manifestDigest, size: artifact.manifestSize }
  const named = (names: Record<string, string>): Descriptor => {
    // The names are what tools find the image by: a `manifest-descriptor` annotation does not replace them.
    const all = { ...annotations, ...names }
    return Object.keys(all).length > 0 ? { ...base, annotations: all } : base
  }
  if (tags.length === 0) return [named({})]
  return tags.map((t) => {
    const ref = parseImageName(t)
    return named({ 'io.containerd.image.name': ref.full, 'org.opencontainers.image.ref.name': ref.tag })
  })
}

/** index.json; `annotations` are the index's own (`index:` annotations). */
export function indexJson(descriptors: readonly Descriptor[], annotations: Readonly<Record<string, string>> = {}): string {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: descriptors,
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  }
  return JSON.stringify(index)
}

/**
 * Docker's `manifest.json` (what classic `docker load` reads) and the legacy `repositories` file.
 * Layer paths point into blobs/, which docker 20.10+ and podman's docker-archive reader accept.
 */
export function dockerManifestFiles(image: FinalImage, tags: readonly string[]): { manifestJson: string; repositories?: string } {
  const names = tags.map((t) => parseImageName(t))
  const manifestJson = JSON.stringify([
    {
      Config: blobName(image.configDigest),
      RepoTags: names.map((n) => n.familiar),
      Layers: image.layers.map((l) => blobName(l.digest)),
    },
  ])
  if (names.length === 0) return { manifestJson }
  const repos: Record<string, Record<string, string>> = {}
  for (const n of names) {
    const repo = n.familiar.slice(0, n.familiar.length - n.tag.length - 1)
    ;(repos[repo] ??= {})[n.tag] = image.configDigest.slice(7)
  }
  return { manifestJson, repositories: JSON.stringify(repos) }
}
