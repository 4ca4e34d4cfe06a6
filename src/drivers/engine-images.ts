/**
 * Images moved between this machine and an engine: local bases loaded in (`POST /images/load`,
 * the docker manifest.json form 20.10 needs) under a content-derived name, the result pushed
 * through the engine (`POST /images/{name}/push`), or fetched (`GET /images/{name}/get`) into an
 * OCI archive written atomically by the `oci` exporter.
 */
import { createWriteStream, promises as fsp } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { ErrorCodes, ImagesmithError, throwIfAborted } from '../errors.js'
import { finalizeImage } from '../artifacts/finalize.js'
import { archiveEntries } from '../exporters/oci-archive.js'
import { exportArtifact } from '../exporters/table.js'
import type { ExportResult } from '../exporters/exporter.js'
import { tarChunks } from '../layer/tar-writer.js'
import type { Platform } from '../oci/types.js'
import { parseImageName } from '../reference/reference.js'
import { CredentialStore } from '../registry/credentials.js'
import type { RegistryConfig } from '../registry/options.js'
import { importLocalImage, parseLocalName, parseLocalRef } from '../sources/local.js'
import { requireLocalImage, storedImage } from '../store/local-images.js'
import type { Store } from '../store/store.js'
import type { Digest } from '../oci/media-types.js'
import { describeEngine, type EngineEndpoint } from '../docker/engine-host.js'
import { engineCall, errorMessage, jsonMessages, readSmall } from '../docker/engine-api.js'

/** The repository local bases are loaded under; the tag is the image's manifest digest. */
export const LOADED_BASE_REPO = 'imagesmith-base'

/**
 * Loads a local base (`oci-archive:`, `oci:`, `docker-archive:`, `local:NAME`) into the engine
 * unless it is there already, and returns the name the Dockerfile reads it by.
 */
export async function loadLocalBase(e: EngineEndpoint, ref: string, ctx: { store: Store; platform: Platform; epoch: number; api: string; signal?: AbortSignal }): Promise<string> {
  const localName = parseLocalName(ref)
  const image = localName !== undefined
    ? await storedImage(ctx.store, (await requireLocalImage(ctx.store, localName)).digest as Digest, ref, ctx.platform)
    : await (async () => {
        const resolved = await importLocalImage(parseLocalRef(ref)!, ref, ctx.store.blobs, ctx.platform, ctx.signal)
        // Written as this project writes images: the archive's manifest.json then matches its blobs.
        return finalizeImage(ctx.store.blobs, resolved.config, resolved.layers)
      })()
  const name = `${LOADED_BASE_REPO}:${image.manifestDigest.slice('sha256:'.length, 'sha256:'.length + 32)}`
  const there = await engineCall(e, { method: 'GET', path: `${ctx.api}/images/${encodeURIComponent(name)}/json`, ...signalOf(ctx.signal) })
  await readSmall(there)
  if (there.statusCode === 200) return name
  throwIfAborted(ctx.signal)
  const entries = await archiveEntries(image, { blobs: ctx.store.blobs, tags: [name], epoch: ctx.epoch })
  const res = await engineCall(e, { method: 'POST', path: `${ctx.api}/images/load?quiet=1`, body: tarChunks(entries), ...signalOf(ctx.signal) })
  await failOnMessages(res, e, `loading ${ref}`)
  return name
}

/** `POST /images/{name}/push` for each tag, with X-Registry-Auth holding our stored credentials for that tag's registry only. */
export async function pushThroughEngine(e: EngineEndpoint, tags: readonly string[], registry: RegistryConfig, api: string, signal?: AbortSignal): Promise<void> {
  const creds = new CredentialStore(registry.configDir, registry.auths)
  for (const tag of tags) {
    const ref = parseImageName(tag)
    const c = await creds.get(ref.domain)
    const auth = c === undefined ? {} : 'password' in c ? { username: c.username, password: c.password } : { ...(c.username ? { username: c.username } : {}), identitytoken: c.identityToken }
    // Docker decodes it as padded URL-safe base64 (Go's base64.URLEncoding); unpadded reads as no credentials.
    const header = Buffer.from(JSON.stringify({ ...auth, serveraddress: ref.domain })).toString('base64').replace(/\+/g, '-').replace(/\//g, '_')
    const repo = ref.familiar.slice(0, ref.familiar.length - ref.tag.length - 1)
    const res = await engineCall(e, {
      method: 'POST',
      path: `${api}/images/${encodeURIComponent(repo)}/push?tag=${encodeURIComponent(ref.tag)}`,
      headers: { 'X-Registry-Auth': header },
      ...signalOf(signal),
    })
    await failOnMessages(res, e, `pushing ${ref.familiar}`, { registry: ref.domain, reference: ref.familiar })
  }
}

/**
 * `GET /images/{id}/get` (a `docker save` tar) into the store, then out as an OCI archive at `dest`
 * through the `oci` exporter: the archive appears whole or not at all.
 */
export async function saveFromEngine(e: EngineEndpoint, id: string, dest: string, ctx: { store: Store; platform: Platform; epoch: number; tags: readonly string[]; api: string; signal?: AbortSignal }): Promise<ExportResult> {
  const res = await engineCall(e, { method: 'GET', path: `${ctx.api}/images/${encodeURIComponent(id)}/get`, ...signalOf(ctx.signal) })
  if (res.statusCode !== 200) {
    const body = await readSmall(res)
    throw new ImagesmithError(ErrorCodes.ENGINE_FAILED, `the engine at ${describeEngine(e)} would not save ${id}: HTTP ${res.statusCode}: ${errorMessage(body)}`, { host: describeEngine(e), status: res.statusCode, message: errorMessage(body) })
  }
  const tmp = await fsp.mkdtemp(join(tmpdir(), 'imagesmith-engine-save-'))
  try {
    const saved = join(tmp, 'image.tar')
    await pipeline(res, createWriteStream(saved), ...(ctx.signal ? [{ signal: ctx.signal }] : []))
    const resolved = await importLocalImage({ transport: 'docker-archive', path: saved }, `docker-archive:${saved}`, ctx.store.blobs, ctx.platform, ctx.signal)
    const image = await finalizeImage(ctx.store.blobs, resolved.config, resolved.layers)
    return await exportArtifact(image, { type: 'oci', dest }, { blobs: ctx.store.blobs, tags: ctx.tags, epoch: ctx.epoch, ...signalOf(ctx.signal) })
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true })
  }
}

/** Non-2xx, or a 200 stream with an `error` message: ENGINE_FAILED with the engine's words. */
async function failOnMessages(res: import('node:http').IncomingMessage, e: EngineEndpoint, what: string, details: Record<string, unknown> = {}): Promise<void> {
  const where = describeEngine(e)
  if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
    const message = errorMessage(await readSmall(res))
    throw new ImagesmithError(ErrorCodes.ENGINE_FAILED, `${what} at ${where} failed: HTTP ${res.statusCode}: ${message}`, { host: where, status: res.statusCode, message, ...details })
  }
  for await (const m of jsonMessages(res)) {
    if (typeof m.error === 'string' || m.errorDetail) {
      const message = String((m.errorDetail as { message?: unknown } | undefined)?.message ?? m.error)
      throw new ImagesmithError(ErrorCodes.ENGINE_FAILED, `${what} at ${where} failed: ${message}`, { host: where, message, ...details })
    }
  }
}

function signalOf(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {}
}
