import { promises as fsp } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { once } from 'node:events'
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import type { LayerEntry } from '../layer/entry.js'
import { tarChunks } from '../layer/tar-writer.js'
import { artifactBlobs, type Artifact } from '../artifacts/artifact.js'
import { createAtomicWriter, sweepDeadTemps } from '../store/atomic-write.js'
import type { ExportContext, Exporter } from './exporter.js'
import { archiveUnchanged } from './oci-archive-unchanged.js'
import { OCI_LAYOUT, blobName, dockerManifestFiles, indexDescriptors, indexJson } from './layout-files.js'

export interface OciArchiveOptions {
  readonly dest: string
}

/**
 * One tarball that every runtime loads: an OCI layout (for skopeo, podman's oci-archive reader and
 * containerd) plus Docker's manifest.json/repositories (for classic `docker load`). Written to a temp
 * name beside `dest` and renamed, so a failed build never leaves a valid-looking partial file. A
 * `dest` that already holds exactly this archive is left as it is (archiveUnchanged). An image
 * index goes as BuildKit's oci exporter writes a multi-platform build: every image's blobs and the
 * index blob, index.json naming the index; no manifest.json (`docker load` takes one image).
 */
export const ociArchiveExporter: Exporter<OciArchiveOptions> = {
  name: 'oci',
  async export(artifact: Artifact, opts: OciArchiveOptions, ctx: ExportContext) {
    const dest = resolve(opts.dest)
    await fsp.mkdir(dirname(dest), { recursive: true }).catch((e) => {
      throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, `cannot create the directory for ${dest}`, { dest }, { cause: e })
    })
    await sweepDeadTemps(dirname(dest), { only: (name) => name.startsWith(`${basename(dest)}.tmp-`) })
    const entries = await archiveEntries(artifact, ctx)
    if (archiveUnchanged(dest, entries)) return { digest: artifact.manifestDigest, path: dest }

    // Not fsynced: a fresh file that replaces nothing another image needs (unlike a layout's index.json).
    const writer = createAtomicWriter(dirname(dest), basename(dest))
    const out = writer.stream
    try {
      for (const chunk of tarChunks(entries)) {
        throwIfAborted(ctx.signal)
        if (!out.write(chunk)) await once(out, 'drain')
      }
      out.end()
      await once(out, 'finish')
      await writer.commit(dest)
    } catch (e) {
      await writer.abort()
      throw e
    }
    return { digest: artifact.manifestDigest, path: dest }
  },
}

/**
 * The archive's entries in order: blobs (streamed from the store when serialized), then the OCI
 * layout files and, for an image, Docker's manifest.json. Shared with the `docker` output, which
 * streams the same tarball into a daemon's `POST /images/load`.
 */
export async function archiveEntries(artifact: Artifact, ctx: Pick<ExportContext, 'blobs' | 'tags' | 'epoch' | 'annotations' | 'signal'>): Promise<LayerEntry[]> {
  const meta = (path: string, text: string): LayerEntry => ({
    type: 'file', path, mode: 0o644, uid: 0, gid: 0, mtime: ctx.epoch, size: Buffer.byteLength(text), source: { data: Buffer.from(text) },
  })
  const dir = (path: string): LayerEntry => ({ type: 'dir', path, mode: 0o755, uid: 0, gid: 0, mtime: ctx.epoch })
  const entries: LayerEntry[] = [dir('blobs'), dir('blobs/sha256')]
  for (const d of artifactBlobs(artifact).sort()) {
    // A layer still remote (an imported cache's) is fetched before the archive is started.
    await ctx.blobs.ensure(d, ctx.signal)
    entries.push({ type: 'file', path: blobName(d), mode: 0o644, uid: 0, gid: 0, mtime: ctx.epoch, size: await ctx.blobs.size(d), source: { path: ctx.blobs.blobPath(d) } })
  }
  entries.push(meta('oci-layout', OCI_LAYOUT), meta('index.json', indexJson(indexDescriptors(artifact, ctx.tags, ctx.annotations?.manifestDescriptor), ctx.annotations?.index)))
  // manifest.json lists runnable images only: an index of one image and its attestations is that
  // image to `docker load` (which reads manifest.json alone and so drops the attestations).
  const runnable = artifact.kind === 'index' ? (artifact.images.length === 1 && artifact.attestations ? artifact.images[0]!.image : undefined) : artifact
  if (runnable === undefined) return entries
  const { manifestJson, repositories } = dockerManifestFiles(runnable, ctx.tags)
  entries.push(meta('manifest.json', manifestJson))
  if (repositories) entries.push(meta('repositories', repositories))
  return entries
}
