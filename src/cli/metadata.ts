import { dirname, resolve } from 'node:path'
import { promises as fsp } from 'node:fs'
import type { BuildResult } from '../pipeline/options.js'
import { writeFileAtomic } from '../store/atomic-write.js'

/**
 * `--metadata-file`: buildx's keys (`containerimage.digest`, `image.name` as comma-joined tags,
 * `containerimage.config.digest`), so scripts written for `docker buildx build --metadata-file` read
 * it unchanged, plus ours under `imagesmith.*`: every step with its key, cached or built, time and
 * the reason it was built.
 */
export function buildMetadata(result: BuildResult, tags: readonly string[]): Record<string, unknown> {
  return {
    'containerimage.digest': result.digest,
    ...(tags.length > 0 ? { 'image.name': tags.join(',') } : {}),
    // A multi-platform build's digest is its index's (buildx's too); its images are listed by platform.
    ...(result.index
      ? {
          'containerimage.descriptor': { mediaType: result.index.mediaType, digest: result.digest },
          'imagesmith.images': (result.images ?? []).map((i) => ({ platform: i.platform, digest: i.digest, configDigest: i.configDigest })),
        }
      : {
          ...(result.configDigest !== undefined ? { 'containerimage.config.digest': result.configDigest } : {}),
          ...(result.manifest ? { 'containerimage.descriptor': { mediaType: result.manifest.mediaType, digest: result.digest } } : {}),
        }),
    'imagesmith.vertices': (result.vertices ?? []).map((v) => ({
      vertex: v.vertex,
      description: v.description,
      ...(v.stage !== undefined ? { stage: v.stage } : {}),
      ...(v.key !== undefined ? { key: v.key } : {}),
      status: v.cached ? 'cached' : v.key !== undefined ? 'built' : 'ran',
      cached: v.cached,
      ms: v.ms,
      ...(v.reason !== undefined ? { reason: v.reason } : {}),
    })),
    ...(result.cacheHits !== undefined ? { 'imagesmith.cacheHits': result.cacheHits } : {}),
    ...(result.layers ? { 'imagesmith.layers': result.layers.map((l) => l.digest) } : {}),
    ...(result.bases ? { 'imagesmith.bases': result.bases } : {}),
    ...(result.output !== undefined ? { 'imagesmith.output': result.output } : {}),
    ...(result.ref !== undefined ? { 'imagesmith.ref': result.ref } : {}),
  }
}

/** Written whole or not at all (a temp file renamed), so a reader never sees half of it. */
export async function writeMetadataFile(path: string, result: BuildResult, tags: readonly string[]): Promise<void> {
  const file = resolve(path)
  await fsp.mkdir(dirname(file), { recursive: true })
  await writeFileAtomic(file, `${JSON.stringify(buildMetadata(result, tags), null, 2)}\n`)
}
