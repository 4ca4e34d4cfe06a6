/**
 * A two-platform busybox base for multi-platform tests: an OCI layout whose `latest` is an image
 * index of the provisioned amd64 and arm64 busybox bases, each listed with its platform (as a
 * registry's multi-arch busybox is). Made from the two provisioned layouts, blobs copied.
 */
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BASE_TAG, busyboxArm64Layout, busyboxLayout } from './testbed.js'

const INDEX = 'application/vnd.oci.image.index.v1+json'

interface Desc {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
}

/** Writes the layout at `dest` (which must not exist) and returns it; `oci:DEST` names it. */
export function busyboxMultiLayout(dest: string): string {
  mkdirSync(join(dest, 'blobs', 'sha256'), { recursive: true })
  const manifests = [busyboxLayout(), busyboxArm64Layout()].map((layout) => {
    const blobs = join(layout, 'blobs', 'sha256')
    for (const name of readdirSync(blobs)) if (!existsSync(join(dest, 'blobs', 'sha256', name))) copyFileSync(join(blobs, name), join(dest, 'blobs', 'sha256', name))
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Desc[] }
    const d = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === BASE_TAG)!
    const manifest = JSON.parse(readFileSync(join(blobs, d.digest.slice(7)), 'utf8')) as { config: { digest: string } }
    const config = JSON.parse(readFileSync(join(blobs, manifest.config.digest.slice(7)), 'utf8')) as { os: string; architecture: string }
    return { mediaType: d.mediaType, digest: d.digest, size: d.size, platform: { os: config.os, architecture: config.architecture } }
  })
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests }))
  const hex = createHash('sha256').update(bytes).digest('hex')
  writeFileSync(join(dest, 'blobs', 'sha256', hex), bytes)
  const top = { schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: INDEX, digest: `sha256:${hex}`, size: bytes.length, annotations: { 'org.opencontainers.image.ref.name': BASE_TAG } }] }
  writeFileSync(join(dest, 'index.json'), JSON.stringify(top))
  writeFileSync(join(dest, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  return dest
}
