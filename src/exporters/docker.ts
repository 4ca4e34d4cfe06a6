import { throwIfAborted } from '../errors.js'
import { tarChunks } from '../layer/tar-writer.js'
import type { FinalImage } from '../oci/types.js'
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

/**
 * buildx's `--load`: the image streams into a Docker Engine through `POST /images/load`, as `docker
 * load` would send it (the same archive as the `oci` output: an OCI layout plus manifest.json,
 * whose RepoTags carry the tags). Nothing is written to disk on the way.
 */
export const dockerExporter: Exporter<DockerOptions> = {
  name: 'docker',
  async export(image: FinalImage, opts: DockerOptions, ctx: ExportContext) {
    const hostText = opts.host ?? ctx.dockerHost ?? DEFAULT_DOCKER_HOST
    const endpoint = parseDockerHost(hostText)
    const entries = await archiveEntries(image, ctx)
    throwIfAborted(ctx.signal)

    await loadImage(endpoint, tarChunks(entries), ctx.signal)
    const first = ctx.tags[0]
    return { digest: image.manifestDigest, ...(first !== undefined ? { ref: parseImageName(first).familiar } : {}) }
  },
}
