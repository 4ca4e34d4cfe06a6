import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { tarChunks } from '../layer/tar-writer.js'
import type { Artifact } from '../artifacts/artifact.js'
import { formatPlatform } from '../oci/platform.js'
import { parseImageName } from '../reference/reference.js'
import { DEFAULT_DOCKER_HOST, parseDockerHost } from '../docker/endpoint.js'
import { loadImage } from '../docker/client.js'
import type { ExportContext, Exporter } from './exporter.js'
import { archiveEntries } from './oci-archive.js'

export interface DockerOptions {
  /**
   * The engine's API endpoint: `unix:///path/to/docker.sock` or `tcp://host:port`. A Podman socket
   * (`podman system service`) works the same way.
   * @default $DOCKER_HOST, else unix:///var/run/docker.sock
   */
  readonly host?: string
}

/** Why the docker output refuses an index, and what to do instead. */
export function dockerIndexMessage(platforms: readonly string[]): string {
  return `the docker output loads one image, and a build for ${platforms.join(', ')} makes an image index, which docker load cannot take: pick one platform (--platform ${platforms[0]}), or use the oci output (-o type=oci,dest=app.tar), oci-layout or registry`
}

/**
 * buildx's `--load`: the image streams into a Docker Engine through `POST /images/load`, as `docker
 * load` would send it (the same archive as the `oci` output: an OCI layout plus manifest.json,
 * whose RepoTags carry the tags). Nothing is written to disk on the way. An image index is refused
 * (INDEX_NOT_SUPPORTED) before the engine is reached: `docker load` (20.10) takes one image per tag.
 */
export const dockerExporter: Exporter<DockerOptions> = {
  name: 'docker',
  async export(artifact: Artifact, opts: DockerOptions, ctx: ExportContext) {
    // One image with its attestations loads as that image: the engine's classic store keeps no attestations.
    if (artifact.kind === 'index' && !(artifact.images.length === 1 && artifact.attestations)) {
      const platforms = artifact.images.map((i) => formatPlatform(i.platform))
      throw new ImagesmithError(
        ErrorCodes.INDEX_NOT_SUPPORTED,
        dockerIndexMessage(platforms),
        { output: 'docker', platforms, digest: artifact.manifestDigest },
      )
    }
    const image = artifact.kind === 'index' ? artifact.images[0]!.image : artifact
    const hostText = opts.host ?? ctx.dockerHost ?? DEFAULT_DOCKER_HOST
    const endpoint = parseDockerHost(hostText)
    const entries = await archiveEntries(artifact, ctx)
    throwIfAborted(ctx.signal)

    await loadImage(endpoint, tarChunks(entries), ctx.signal)
    const first = ctx.tags[0]
    return { digest: image.manifestDigest, ...(first !== undefined ? { ref: parseImageName(first).familiar } : {}) }
  },
}
