/**
 * The SBOM's view of an image's files: layers read through the tar reader with whiteouts and
 * opaque directories applied, hard links followed, each file and the total bounded (a file over the
 * bound is skipped and named; too much metadata is ATTESTATION_INPUT_TOO_LARGE); and the catalogers
 * on what is left (apk, dpkg status.d, npm lockfile v1).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apkPackages, dpkgPackages } from '../../src/attest/catalog-os.js'
import { npmPackages } from '../../src/attest/catalog-lang.js'
import { scanImageFiles } from '../../src/attest/image-files.js'
import { formatPurl } from '../../src/attest/purl.js'
import { sbomFileFilter } from '../../src/attest/spdx.js'
import type { LayerEntry } from '../../src/layer/entry.js'
import { writeLayer } from '../../src/layer/write-layer.js'
import type { LayerRef } from '../../src/oci/types.js'
import { BlobStore } from '../../src/store/blob-store.js'

let dir: string
let blobs: BlobStore
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ism-sbom-'))
  blobs = new BlobStore(join(dir, 'store'))
  await blobs.init()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const file = (path: string, text: string): LayerEntry => ({ type: 'file', path, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: Buffer.byteLength(text), source: { data: Buffer.from(text) } })
const layer = (entries: LayerEntry[], compression: 'gzip' | 'none' = 'gzip'): Promise<LayerRef> => writeLayer(entries, blobs, { compression })
const pkg = (name: string, version = '1.0.0') => JSON.stringify({ name, version })

describe('scanImageFiles', () => {
  it('applies whiteouts and opaque dirs of later layers, follows hard links, keeps what a later layer adds back', async () => {
    const l1 = await layer([
      file('app/node_modules/a/package.json', pkg('a')),
      file('app/node_modules/b/package.json', pkg('b')),
      file('srv/node_modules/c/package.json', pkg('c')),
      file('etc/unrelated.txt', 'not read'),
      { type: 'hardlink', path: 'opt/node_modules/b/package.json', mode: 0o644, uid: 0, gid: 0, mtime: 0, linkname: 'app/node_modules/b/package.json' },
    ])
    const l2 = await layer([
      file('app/node_modules/.wh.a', ''),
      file('srv/node_modules/.wh..wh..opq', ''),
      file('srv/node_modules/d/package.json', pkg('d')),
    ], 'none')
    const { files } = await scanImageFiles(blobs, [l1, l2], sbomFileFilter)
    expect(files.map((f) => [f.path, f.layer]).sort()).toEqual([
      ['app/node_modules/b/package.json', l1.diffId],
      ['opt/node_modules/b/package.json', l1.diffId],
      ['srv/node_modules/d/package.json', l2.diffId],
    ])
    expect(npmPackages(files).map((p) => formatPurl(p.purl)).sort()).toEqual(['pkg:npm/b@1.0.0', 'pkg:npm/b@1.0.0', 'pkg:npm/d@1.0.0'])
  })

  it('skips a file over the bound and names it; refuses more metadata than the total bound', async () => {
    const l = await layer([file('var/lib/dpkg/status', 'x'.repeat(2000)), file('app/node_modules/a/package.json', pkg('a'))])
    const r = await scanImageFiles(blobs, [l], sbomFileFilter, undefined, { fileBytes: 1000, totalBytes: 1 << 20, files: 100 })
    expect(r.skipped).toEqual(['var/lib/dpkg/status'])
    expect(r.files.map((f) => f.path)).toEqual(['app/node_modules/a/package.json'])
    await expect(scanImageFiles(blobs, [l], sbomFileFilter, undefined, { fileBytes: 1 << 20, totalBytes: 100, files: 100 }))
      .rejects.toMatchObject({ code: 'ATTESTATION_INPUT_TOO_LARGE', details: { path: 'var/lib/dpkg/status', layer: l.digest } })
  })
})

describe('catalogers', () => {
  const f = (path: string, text: string) => ({ path, data: Buffer.from(text), layer: `sha256:${'1'.repeat(64)}` as const })
  const os = { id: 'alpine', versionId: '3.20.3' }
  it('apk: P/V/A/o; dpkg status.d stanzas (no Status) are installed; npm lockfile v1 nested, dev left out', () => {
    expect(apkPackages([f('lib/apk/db/installed', 'C:Q1x\nP:busybox\nV:1.36.1-r29\nA:x86_64\no:busybox\n\nP:ssl_client\nV:1.36.1-r29\nA:x86_64\no:busybox\n')], os).map((p) => formatPurl(p.purl))).toEqual([
      'pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&distro=alpine-3.20.3',
      'pkg:apk/alpine/ssl_client@1.36.1-r29?arch=x86_64&distro=alpine-3.20.3&upstream=busybox',
    ])
    expect(dpkgPackages([f('var/lib/dpkg/status.d/tzdata', 'Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n')], { id: 'debian', versionId: '12' }).map((p) => formatPurl(p.purl)))
      .toEqual(['pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12'])
    const lock = { lockfileVersion: 1, dependencies: { x: { version: '1.0.0', dependencies: { y: { version: '2.0.0' } } }, devonly: { version: '3.0.0', dev: true }, local: { version: 'file:../local' } } }
    expect(npmPackages([f('app/package-lock.json', JSON.stringify(lock))]).map((p) => formatPurl(p.purl))).toEqual(['pkg:npm/x@1.0.0', 'pkg:npm/y@2.0.0'])
  })
})
