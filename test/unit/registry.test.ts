import { describe, expect, it } from 'vitest'
import { parseChallenges } from '../../src/registry/challenge.js'
import { authKey, keyHost } from '../../src/registry/credentials.js'
import { isLoopback, mirrorEndpoint, parseMirrorList, pullEndpoints, schemeFor } from '../../src/registry/endpoints.js'
import { backoffDelay, retryAfterMs, safeUrl } from '../../src/registry/transport.js'
import { resolveRegistryOptions } from '../../src/pipeline/resolve-options.js'
import { ErrorCodes } from '../../src/errors.js'

describe('registry endpoints', () => {
  it('plain HTTP only for loopback and listed hosts', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:5000', '[::1]:5000', '::1']) expect(isLoopback(h), h).toBe(true)
    for (const h of ['registry.example', '10.0.0.1:5000', '128.0.0.1', '[fe80::1]:5000', 'localhost.example']) expect(isLoopback(h), h).toBe(false)
    expect(schemeFor('127.0.0.1:5000', { insecure: [] })).toBe('http')
    expect(schemeFor('reg.lan:5000', { insecure: [] })).toBe('https')
    expect(schemeFor('reg.lan:5000', { insecure: ['reg.lan:5000'] })).toBe('http')
  })

  it('mirrors first, then the origin; docker.io is served by registry-1.docker.io', () => {
    const eps = pullEndpoints('docker.io', { insecure: [], mirrors: { 'docker.io': ['127.0.0.1:5000', 'mirror.example'] } })
    expect(eps.map((e) => [e.base, e.mirror, e.registry])).toEqual([
      ['http://127.0.0.1:5000', true, '127.0.0.1:5000'],
      ['https://mirror.example', true, 'mirror.example'],
      ['https://registry-1.docker.io', false, 'docker.io'],
    ])
    expect(pullEndpoints('quay.io', { insecure: [], mirrors: { 'docker.io': ['m:1'] } }).map((e) => e.base)).toEqual(['https://quay.io'])
    expect(() => mirrorEndpoint('docker.io', 'http://mirror.example', { insecure: [] })).toThrow(/insecure/)
    expect(mirrorEndpoint('docker.io', 'http://mirror.example', { insecure: ['mirror.example'] }).base).toBe('http://mirror.example')
  })

  it('mirror lists from the flag and the environment variable', () => {
    expect(parseMirrorList('docker.io=127.0.0.1:5000, docker.io=m:1;quay.io=q:2', 'x')).toEqual({ 'docker.io': ['127.0.0.1:5000', 'm:1'], 'quay.io': ['q:2'] })
    expect(() => parseMirrorList('docker.io', 'x')).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }))
    const env = { IMAGESMITH_REGISTRY_MIRRORS: 'docker.io=a:1,quay.io=b:2', DOCKER_CONFIG: '/cfg' }
    const r = resolveRegistryOptions({ mirrors: { 'docker.io': ['c:3'] } }, env)
    expect(r.mirrors).toEqual({ 'docker.io': ['c:3'], 'quay.io': ['b:2'] }) // the option wins for the registry it names
    expect(r.configDir).toBe('/cfg')
    expect(resolveRegistryOptions({}, {}).configDir).toMatch(/\.docker$/)
    expect(() => resolveRegistryOptions({ retries: -1 }, {})).toThrow(/retries/)
    expect(() => resolveRegistryOptions({ mirrors: { 'docker.io': ['http://m.example/'] } }, {})).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }))
    expect(() => resolveRegistryOptions({}, { IMAGESMITH_REGISTRY_MIRRORS: 'docker.io=a/b/c' })).toThrow(/host\[:port\]/)
  })
})

describe('registry auth parsing', () => {
  it('parses WWW-Authenticate challenges as registries send them', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ])
    expect(parseChallenges('Basic realm="r \\"q\\""')).toEqual([{ scheme: 'basic', params: { realm: 'r "q"' } }])
    expect(parseChallenges(undefined)).toEqual([])
  })

  it("Docker Hub's config.json key, and keys compared by host", () => {
    expect(authKey('docker.io')).toBe('https://index.docker.io/v1/')
    expect(authKey('127.0.0.1:5000')).toBe('127.0.0.1:5000')
    expect(keyHost('https://index.docker.io/v1/')).toBe('index.docker.io')
    expect(keyHost('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000')
  })

  it('Retry-After (seconds or a date) decides the delay; URLs lose their query in messages', () => {
    expect(backoffDelay(1, 100, '3')).toBe(3000)
    // What the server asks for, however long: the transport refuses waits past its cap (REGISTRY_ERROR).
    expect(backoffDelay(1, 100, '3600')).toBe(3_600_000)
    expect(retryAfterMs(new Date(Date.now() + 10_000).toUTCString())).toBeGreaterThan(8_000)
    expect(retryAfterMs('soon')).toBeUndefined()
    const d = backoffDelay(2, 100)
    expect(d).toBeGreaterThanOrEqual(150)
    expect(d).toBeLessThanOrEqual(250)
    expect(safeUrl('https://u:p@s3.example/b?X-Amz-Signature=secret')).toBe('https://s3.example/b')
  })
})
