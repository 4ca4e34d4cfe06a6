import { promises as fsp } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { artifactBlobs, type Artifact } from '../artifacts/artifact.js'
import { sweepDeadTemps, tempPath, writeFileAtomic } from '../store/atomic-write.js'
import type { Descriptor, ImageIndex } from '../oci/types.js'
import type { ExportContext, Exporter } from './exporter.js'
import { OCI_LAYOUT, blobName, indexDescriptors, indexJson } from './layout-files.js'

export interface OciLayoutOptions {
  readonly dest: string
}

/**
 * An OCI image layout directory. Into an existing layout the image is added (as `skopeo copy oci:`
 * does): blobs first, each renamed into place, then index.json replaced atomically, so the layout is
 * never seen naming a blob that is not there. A new directory is built under a temp name and renamed.
 * An image index brings every image's blobs and its own, and index.json names the index.
 */
export const ociLayoutExporter: Exporter<OciLayoutOptions> = {
  name: 'oci-layout',
  async export(artifact: Artifact, opts: OciLayoutOptions, ctx: ExportContext) {
    const dest = resolve(opts.dest)
    const existing = await layoutState(dest)
    const target = existing === 'missing' ? tempPath(dirname(dest), basename(dest)) : dest
    try {
      const blobDir = join(target, 'blobs', 'sha256')
      await fsp.mkdir(blobDir, { recursive: true })
      // Temps left in this layout (or beside it) by an export that died; only names of our form.
      await sweepDeadTemps(dirname(dest), { only: (name) => name.startsWith(`${basename(dest)}.tmp-`) })
      if (existing === 'layout') await Promise.all([sweepDeadTemps(target), sweepDeadTemps(blobDir)])
      for (const d of artifactBlobs(artifact)) {
        throwIfAborted(ctx.signal)
        const to = join(target, blobName(d))
        if (await exists(to)) continue
        await ctx.blobs.ensure(d, ctx.signal)
        const tmp = tempPath(blobDir, d.slice(7))
        try {
          await linkOrCopy(ctx.blobs.blobPath(d), tmp)
          await fsp.rename(tmp, to)
        } catch (e) {
          await fsp.rm(tmp, { force: true })
          throw e
        }
      }
      let descriptors = indexDescriptors(artifact, ctx.tags, ctx.annotations?.manifestDescriptor)
      let indexAnnotations = ctx.annotations?.index ?? {}
      if (existing === 'layout') {
        const old = JSON.parse(await fsp.readFile(join(target, 'index.json'), 'utf8')) as ImageIndex
        // The layout's own index annotations stay; this build's are set over them.
        indexAnnotations = { ...old.annotations, ...indexAnnotations }
        const names = new Set(descriptors.map((d) => d.annotations?.['org.opencontainers.image.ref.name']).filter(Boolean))
        const fullNames = new Set(descriptors.map((d) => d.annotations?.['io.containerd.image.name']).filter(Boolean))
        const kept = (old.manifests ?? []).filter((d: Descriptor) => {
          const a = d.annotations ?? {}
          if (a['io.containerd.image.name'] && fullNames.has(a['io.containerd.image.name'])) return false
          if (a['org.opencontainers.image.ref.name'] && names.has(a['org.opencontainers.image.ref.name'])) return false
          return !(d.digest === artifact.manifestDigest && ctx.tags.length === 0 && !d.annotations?.['org.opencontainers.image.ref.name'] && !d.annotations?.['io.containerd.image.name'])
        })
        descriptors = [...kept, ...descriptors]
      }
      // index.json is what makes the blobs reachable: it must reach the disk whole, after them.
      await writeFileAtomic(join(target, 'oci-layout'), OCI_LAYOUT, { fsyncDir: true })
      await writeFileAtomic(join(target, 'index.json'), indexJson(descriptors, indexAnnotations), { fsyncDir: true })
      if (existing === 'missing') await fsp.rename(target, dest)
    } catch (e) {
      if (existing === 'missing') await fsp.rm(target, { recursive: true, force: true })
      throw e
    }
    return { digest: artifact.manifestDigest, path: dest }
  },
}

async function layoutState(dir: string): Promise<'missing' | 'empty' | 'layout'> {
  let names: string[]
  try {
    names = await fsp.readdir(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      await fsp.mkdir(dirname(dir), { recursive: true })
      return 'missing'
    }
    throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, `output ${dir} is not a directory`, { dest: dir }, { cause: e })
  }
  if (names.length === 0) return 'empty'
  if (names.includes('oci-layout') && names.includes('index.json')) return 'layout'
  throw new ImagesmithError(ErrorCodes.OUTPUT_INVALID, `output ${dir} exists and is not an OCI layout; refusing to write into it`, { dest: dir })
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p)
    return true
  } catch {
    return false
  }
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await fsp.link(from, to)
  } catch {
    // A copy (another filesystem) is not yet on disk; the store's blob, which a link shares, is.
    await fsp.copyFile(from, to)
    const fh = await fsp.open(to, 'r+')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
  }
}
