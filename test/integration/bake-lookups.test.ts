/**
 * Many builds in one process on one store resolve a base they share once: ten concurrent builds
 * FROM the same registry image make one manifest request and fetch each blob once (a real
 * docker-registry behind a counting proxy), and a build aborted while its lookup is merged with
 * another's leaves the other to finish it.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image } from '../../src/index.js'
import { ErrorCodes } from '../../src/errors.js'
import { seedBases, startProxy, startTestRegistry, type SeededBases, type TestProxy, type TestRegistry } from '../helpers/registry.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['docker-registry', 'skopeo'])

/**
 * A loopback proxy that holds every blob response until {@link open} is called, and says when the
 * first blob request arrived: the test acts while a pull is known to be in flight, without sleeping.
 */
async function holdingProxy(target: string): Promise<{ host: string; paths: string[]; firstBlob: Promise<void>; open(): void; stop(): Promise<void> }> {
  const paths: string[] = []
  let opened = false
  const held: (() => void)[] = []
  let sawBlob!: () => void
  const firstBlob = new Promise<void>((r) => (sawBlob = r))
  const [host, port] = target.split(':') as [string, string]
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/'
    paths.push(`${req.method} ${path}`)
    const forward = () => {
      const up = http.request({ host, port: Number(port), method: req.method, path, headers: { ...req.headers, host: target } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers)
        r.pipe(res)
      })
      up.on('error', () => res.socket?.destroy())
      req.pipe(up)
    }
    if (/\/blobs\/sha256:/.test(path) && !opened) {
      held.push(forward)
      sawBlob()
    } else forward()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    firstBlob,
    open() {
      opened = true
      for (const f of held.splice(0)) f()
    },
    stop: () => {
      server.closeAllConnections()
      return new Promise<void>((r) => server.close(() => r()))
    },
  }
}

describe.skipIf(bed.skip)('builds in one process share their base lookups', () => {
  let reg: TestRegistry
  let seeded: SeededBases
  let proxy: TestProxy
  let work: string

  beforeAll(async () => {
    work = await tmpDir('ism-bake-lookups-')
    reg = await startTestRegistry()
    seeded = await seedBases(reg)
    proxy = await startProxy(reg.host)
  }, 120_000)
  afterAll(async () => {
    await Promise.all([proxy?.stop(), reg?.stop()])
    await cleanupTmpDirs()
  })

  it('10 concurrent builds FROM one registry image on one store: one manifest request, each blob fetched once', async () => {
    const ref = `${proxy.host}/library/busybox:latest`
    const cacheDir = join(work, 'store-10')
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => image().from(ref).env('N', String(i)).build({ cacheDir, context: work })))
    for (const r of results) expect(r.bases).toEqual([{ ref, digest: seeded.busybox }])
    expect(new Set(results.map((r) => r.layers[0]!.digest)).size).toBe(1)

    const gets = proxy.requests.filter((q) => q.method === 'GET')
    const tagGets = gets.filter((q) => q.path === '/v2/library/busybox/manifests/latest')
    expect(tagGets).toHaveLength(1)
    const blobGets = gets.filter((q) => /\/blobs\/sha256:/.test(q.path)).map((q) => q.path)
    expect(blobGets.length).toBeGreaterThan(0)
    // Config and layer, each once.
    expect(blobGets).toEqual([...new Set(blobGets)])
  }, 120_000)

  it('one of two merged lookups aborted: that build fails ABORTED, the other finishes the pull', async () => {
    const hold = await holdingProxy(reg.host)
    try {
      const ref = `${hold.host}/library/busybox:latest`
      const cacheDir = join(work, 'store-abort')
      const abort = new AbortController()
      const first = image().from(ref).env('N', 'a').build({ cacheDir, context: work, signal: abort.signal })
      const second = image().from(ref).env('N', 'b').build({ cacheDir, context: work })
      first.catch(() => undefined)
      // A blob of the shared pull is being fetched now (and held): abort the build that started it.
      await hold.firstBlob
      abort.abort()
      await expect(first).rejects.toMatchObject({ code: ErrorCodes.ABORTED })
      hold.open()
      const done = await second
      expect(done.bases).toEqual([{ ref, digest: seeded.busybox }])
      // The second build finished the first one's pull rather than starting its own.
      expect(hold.paths.filter((p) => p === 'GET /v2/library/busybox/manifests/latest')).toHaveLength(1)
      const blobs = hold.paths.filter((p) => /\/blobs\/sha256:/.test(p))
      expect(blobs).toEqual([...new Set(blobs)])
    } finally {
      await hold.stop()
    }
  }, 120_000)
})
