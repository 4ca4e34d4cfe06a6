import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { buildCacheArtifact, CACHE_CONFIG_MEDIA_TYPE, MAX_CACHE_RECORDS, parseCacheConfig, parseCacheManifest, type CacheEntry } from '../../src/cache/format.js'
import { ErrorCodes } from '../../src/errors.js'
import type { Digest } from '../../src/oci/media-types.js'
import { thrown } from '../helpers/thrown.js'

const sha = (b: Buffer | string): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`
const gz = 'application/vnd.oci.image.layer.v1.tar+gzip'
const entry = (i: number, layer = i): CacheEntry => ({ key: sha(`key${i}`), layer: { digest: sha(`layer${layer}`), diffId: sha(`diff${layer}`), size: 100 + layer, mediaType: gz } })

describe('cache artifact format', () => {
  it('round-trips: one OCI manifest with our config media type, layers deduplicated, records by key', () => {
    const entries = [entry(2), entry(1), entry(3, 1)]
    const art = buildCacheArtifact(entries, sha)
    const m = JSON.parse(art.manifest.toString('utf8'))
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
    expect(m.config).toEqual({ mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: art.configDigest, size: art.config.length })
    expect(m.layers).toHaveLength(2)
    expect(art.manifestDigest).toBe(sha(art.manifest))
    const parsed = parseCacheManifest(art.manifest, 'test')
    const records = parseCacheConfig(art.config, parsed.layers, 'test')
    expect(new Map(entries.map((e) => [e.key, e.layer]))).toEqual(records)
    // The same records in another order are the same bytes.
    expect(buildCacheArtifact([...entries].reverse(), sha).manifestDigest).toBe(art.manifestDigest)
  })

  it("refuses another tool's cache (BuildKit's config type) and an image, naming the source", () => {
    const art = buildCacheArtifact([entry(1)], sha)
    const m = JSON.parse(art.manifest.toString('utf8'))
    for (const mediaType of ['application/vnd.buildkit.cacheconfig.v0', 'application/vnd.oci.image.config.v1+json']) {
      const e = thrown(() => parseCacheManifest(Buffer.from(JSON.stringify({ ...m, config: { ...m.config, mediaType } })), 'type=registry,ref=r/x:c'))
      expect(e.code).toBe(ErrorCodes.CACHE_INVALID)
      expect(e.details).toEqual({ source: 'type=registry,ref=r/x:c', field: 'config.mediaType' })
      expect(e.message).toContain(mediaType)
    }
    expect(thrown(() => parseCacheManifest(Buffer.from('{not json'), 's')).details.field).toBe('manifest')
    expect(thrown(() => parseCacheManifest(Buffer.from(JSON.stringify({ ...m, layers: [{ digest: 'sha256:zz', size: 1, mediaType: gz }] })), 's')).details.field).toBe('layers[0]')
    expect(thrown(() => parseCacheManifest(Buffer.from(JSON.stringify({ ...m, config: { ...m.config, size: 1 << 30 } })), 's')).details.field).toBe('config.size')
  })

  it('checks every record: well-formed digests, a listed layer of that size and type, a layer media type, bounded count', () => {
    const art = buildCacheArtifact([entry(1)], sha)
    const layers = parseCacheManifest(art.manifest, 's').layers
    const doc = JSON.parse(art.config.toString('utf8'))
    const withRecord = (r: Record<string, unknown>) => Buffer.from(JSON.stringify({ ...doc, records: [{ ...doc.records[0], ...r }] }))
    expect(thrown(() => parseCacheConfig(withRecord({ key: 'sha256:short' }), layers, 's')).details.field).toBe('records[0]')
    expect(thrown(() => parseCacheConfig(withRecord({ diffId: 'md5:00' }), layers, 's')).details.field).toBe('records[0]')
    expect(thrown(() => parseCacheConfig(withRecord({ size: -1 }), layers, 's')).details.field).toBe('records[0]')
    expect(thrown(() => parseCacheConfig(withRecord({ digest: sha('elsewhere') }), layers, 's')).details.field).toBe('records[0].digest')
    expect(thrown(() => parseCacheConfig(withRecord({ size: 5 }), layers, 's')).details.field).toBe('records[0].digest')
    expect(thrown(() => parseCacheConfig(withRecord({ mediaType: 'text/html' }), layers, 's')).details.field).toBe('records[0].mediaType')
    expect(thrown(() => parseCacheConfig(Buffer.from('[]'), layers, 's')).details.field).toBe('config')
    expect(thrown(() => parseCacheConfig(Buffer.from('{'), layers, 's')).details.field).toBe('config')
    const many = Buffer.from(JSON.stringify({ schemaVersion: 1, records: Array.from({ length: MAX_CACHE_RECORDS + 1 }, () => 0) }))
    expect(thrown(() => parseCacheConfig(many, layers, 's')).details.field).toBe('records')
  })
})
