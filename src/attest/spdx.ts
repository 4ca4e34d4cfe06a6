import { createHash } from 'node:crypto'
import type { FinalImage } from '../oci/types.js'
import type { BlobStore } from '../store/blob-store.js'
import { isDistInfoMetadata, isNodeModulePackageJson, isPackageLock, npmPackages, pythonPackages } from './catalog-lang.js'
import { APK_PATH, OS_RELEASE_PATHS, apkPackages, dpkgPackages, isDpkgPath, parseOsRelease, type FoundPackage } from './catalog-os.js'
import { scanImageFiles } from './image-files.js'
import { formatPurl } from './purl.js'

/** The files the catalogers read; every other entry of a layer is streamed past. */
export const sbomFileFilter = (p: string): boolean =>
  isDpkgPath(p) || p === APK_PATH || (OS_RELEASE_PATHS as readonly string[]).includes(p) || isNodeModulePackageJson(p) || isPackageLock(p) || isDistInfoMetadata(p)

export interface SpdxPackage {
  readonly SPDXID: string
  readonly name: string
  readonly versionInfo: string
  readonly downloadLocation: 'NOASSERTION'
  readonly filesAnalyzed: false
  readonly sourceInfo?: string
  readonly comment?: string
  readonly primaryPackagePurpose?: string
  readonly externalRefs?: readonly { readonly referenceCategory: 'PACKAGE-MANAGER'; readonly referenceType: 'purl'; readonly referenceLocator: string }[]
}

export interface SpdxDocument {
  readonly spdxVersion: 'SPDX-2.3'
  readonly dataLicense: 'CC0-1.0'
  readonly SPDXID: 'SPDXRef-DOCUMENT'
  readonly name: string
  readonly documentNamespace: string
  readonly creationInfo: { readonly created: string; readonly creators: readonly string[]; readonly comment?: string }
  readonly documentDescribes: readonly string[]
  readonly packages: readonly SpdxPackage[]
  readonly relationships: readonly { readonly spdxElementId: string; readonly relationshipType: string; readonly relatedSpdxElement: string }[]
}

export interface SbomInput {
  readonly image: FinalImage
  /** The image's name (its first tag), else its digest: the document and root package are named after it. */
  readonly name: string
  /** RFC 3339 time of the document: the image's `created`, so the same image gives the same SBOM. */
  readonly created: string
  readonly tool: string
  readonly signal?: AbortSignal
}

/**
 * SPDX 2.3 JSON of the final image's filesystem (what `grype sbom:` and Docker Scout read): the
 * installed dpkg and apk packages, npm packages (node_modules and the app's lockfile) and Python
 * distributions, each with `name`, `versionInfo`, an `SPDXID`, its purl and, as BuildKit's
 * post-processing writes it, `comment: "layerID: <diffID>"` for the layer that introduced it. The
 * root package is the image (`primaryPackagePurpose: CONTAINER`), which CONTAINS every package.
 */
export async function imageSbom(blobs: BlobStore, input: SbomInput): Promise<SpdxDocument> {
  const { files, skipped } = await scanImageFiles(blobs, input.image.layers, sbomFileFilter, input.signal)
  const os = parseOsRelease(files)
  const found: FoundPackage[] = [...dpkgPackages(files, os), ...apkPackages(files, os), ...npmPackages(files), ...pythonPackages(files)]
  const byPurl = new Map<string, FoundPackage>()
  for (const p of found) if (!byPurl.has(formatPurl(p.purl))) byPurl.set(formatPurl(p.purl), p)
  const packages: SpdxPackage[] = [...byPurl].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([purl, p]) => ({
    SPDXID: `SPDXRef-Package-${p.purl.type}-${p.purl.name.replace(/[^A-Za-z0-9.-]/g, '-')}-${createHash('sha256').update(purl).digest('hex').slice(0, 16)}`,
    name: p.purl.namespace && p.purl.type === 'npm' ? `${p.purl.namespace}/${p.purl.name}` : p.purl.name,
    versionInfo: p.purl.version,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    sourceInfo: `acquired package info from ${p.source}`,
    comment: `layerID: ${p.layer}`,
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl }],
  }))
  const root: SpdxPackage = {
    SPDXID: 'SPDXRef-image',
    name: input.name,
    versionInfo: input.image.manifestDigest,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    primaryPackagePurpose: 'CONTAINER',
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: input.name,
    // Unique per image content, and the same for the same image: the manifest digest names it.
    documentNamespace: `https://imagesmith.dev/spdx/${input.image.manifestDigest.slice(7)}`,
    creationInfo: {
      created: input.created,
      creators: [`Tool: ${input.tool}`],
      ...(skipped.length > 0 ? { comment: `files over the size bound, not read: ${skipped.slice(0, 100).map((s) => `/${s}`).join(', ')}` } : {}),
    },
    documentDescribes: [root.SPDXID],
    packages: [root, ...packages],
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: root.SPDXID },
      ...packages.map((p) => ({ spdxElementId: root.SPDXID, relationshipType: 'CONTAINS', relatedSpdxElement: p.SPDXID })),
    ],
  }
}
