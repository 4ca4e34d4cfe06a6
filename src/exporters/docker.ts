import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { tarChunks } from '../layer/tar-writer.js'
import type { Artifact } from '../artifacts/artifact.js'
import { formatPlatform } from '../oci/platform.js'
import { parseImageName } from '../reference/reference.js'
import { DEFAULT_DOCKER_HOST, describeEndpoint, engineRequest, parseDockerHost, readBody } from './docker-host.js'
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
 * whose RepoTags carry the tags). Nothing is written to disk on the way. An image index is refused
 * (INDEX_NOT_SUPPORTED) before the engine is reached: `docker load` (20.10) takes one image per tag.
 */
export const dockerExporter: Exporter<DockerOptions> = {
  name: 'docker',
  async export(artifact: Artifact, opts: DockerOptions, ctx: ExportContext) {
    if (artifact.kind === 'index') {
      const platforms = artifact.images.map((i) => formatPlatform(i.platform))
      throw new ImagesmithError(
        ErrorCodes.INDEX_NOT_SUPPORTED,
        `the docker output loads one image, and this is an image index for ${platforms.join(', ')}: docker load cannot take it (use an oci, oci-layout or registry output, or build one platform)`,
        { output: 'docker', platforms, digest: artifact.manifestDigest },
      )
    }
    const image = artifact
    const hostText = opts.host ?? ctx.dockerHost ?? DEFAULT_DOCKER_HOST
    const endpoint = parseDockerHost(hostText)
    const where = describeEndpoint(endpoint)
    const entries = await archiveEntries(image, ctx)
    throwIfAborted(ctx.signal)

    const req = engineRequest(endpoint, {
      method: 'POST',
      path: '/images/load',
      headers: { 'Content-Type': 'application/x-tar', 'Transfer-Encoding': 'chunked' },
      signal: ctx.signal,
    })
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve)
      req.once('error', reject)
    })
    // The engine may answer (and close) before the body is sent: stop writing then, and report its answer.
    let answered = false
    void response.then(() => (answered = true), () => (answered = true))
    try {
      for (const chunk of tarChunks(entries)) {
        if (answered || req.destroyed) break
        if (!req.write(chunk)) await Promise.race([once(req, 'drain'), response])
      }
      req.end()
      const res = await response
      const body = await readBody(res)
      const failure = loadFailure(res.statusCode ?? 0, body)
      if (failure !== undefined) {
        throw new ImagesmithError(ErrorCodes.DOCKER_LOAD_FAILED, `the engine at ${where} refused the image: ${failure}`, { host: where, status: res.statusCode })
      }
    } catch (e) {
      req.destroy()
      throwIfAborted(ctx.signal)
      if (e instanceof ImagesmithError) throw e
      const errno = (e as NodeJS.ErrnoException).code
      if (errno === 'ENOENT' || errno === 'ECONNREFUSED' || errno === 'EACCES' || errno === 'ENOTFOUND') {
        throw new ImagesmithError(
          ErrorCodes.DOCKER_UNREACHABLE,
          `cannot reach a Docker engine at ${where} (${errno}): is the daemon running? Set DOCKER_HOST or the docker output's host option`,
          { host: where },
          { cause: e },
        )
      }
      throw new ImagesmithError(ErrorCodes.DOCKER_LOAD_FAILED, `loading the image into ${where} failed: ${(e as Error).message}`, { host: where }, { cause: e })
    }
    const first = ctx.tags[0]
    return { digest: image.manifestDigest, ...(first !== undefined ? { ref: parseImageName(first).familiar } : {}) }
  },
}

/**
 * The engine answers 200 with a stream of JSON messages, one of which may carry `error`
 * (docker), or a non-2xx status with `{ message }` (docker and podman).
 */
function loadFailure(status: number, body: string): string | undefined {
  if (status < 200 || status >= 300) {
    try {
      const msg = (JSON.parse(body) as { message?: string }).message
      return `HTTP ${status}: ${msg ?? body.trim()}`
    } catch {
      return `HTTP ${status}: ${body.trim().slice(0, 500)}`
    }
  }
  for (const line of body.split('\n')) {
    if (!line.trim()) continue
    try {
      const m = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } }
      if (m.error || m.errorDetail) return m.errorDetail?.message ?? m.error
    } catch {
      /* a non-JSON line is progress text, not an error */
    }
  }
  return undefined
}
