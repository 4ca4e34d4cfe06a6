/** What `inspect`, `images` and `cache ls` show of a store's local images and cache entries. */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/main.js'
import { image } from '../../src/index.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

let root: string
let cacheDir: string
let digest: string

const run = async (...argv: string[]) => {
  let out = ''
  let err = ''
  const code = await main([...argv, '--cache-dir', cacheDir], { out: (s) => (out += s), err: (s) => (err += s) })
  return { code, out, err }
}

beforeAll(async () => {
  root = await tmpDir('ism-local-views-')
  cacheDir = join(root, 'cache')
  const ctx = join(root, 'ctx')
  mkdirSync(ctx)
  // Random bytes do not compress: 2 MiB of them and 2 MiB of zeros make ~2 MiB compressed, 4 MiB unpacked.
  writeFileSync(join(ctx, 'random.bin'), randomBytes(2 << 20))
  writeFileSync(join(ctx, 'zeros.bin'), Buffer.alloc(2 << 20))
  const app = image().copy('random.bin', '/random.bin').copy('zeros.bin', '/zeros.bin')
  const r = await app.build({ context: ctx, cacheDir, tags: ['viewapp:1'], stages: { app } })
  digest = r.digest
})
afterAll(cleanupTmpDirs)

describe('local views', () => {
  it('inspect takes a local image name', async () => {
    const r = await run('inspect', 'viewapp:1')
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain(`Digest:       ${digest}`)
    expect(r.out).toContain('Name:         viewapp:1')
    expect(r.out).toContain('COPY zeros.bin /zeros.bin # buildkit')
    const missing = await run('inspect', 'nosuch:1')
    expect(missing.code).toBe(1)
    expect(missing.err).toContain('IMAGE_NOT_FOUND')
  })

  it('images shows the unpacked size, as docker and podman do', async () => {
    const r = await run('images', '--format', 'json')
    expect(r.code, r.err).toBe(0)
    const [rec] = JSON.parse(r.out) as { size: number; compressedSize: number }[]
    // Two uncompressed layer tars: the 4 MiB of files plus their tar headers.
    expect(rec!.size).toBeGreaterThanOrEqual(4 << 20)
    expect(rec!.size).toBeLessThan((4 << 20) + 64 * 1024)
    expect(rec!.compressedSize).toBeLessThan(3 << 20)
    const table = await run('images')
    expect(table.out).toMatch(/^viewapp\s+1\s.*\s4\.\d+MB$/m) // 4 MiB in SI units, not the ~2.1 MB compressed
  })

  it('cache ls says which step each cache entry belongs to', async () => {
    const r = await run('cache', 'ls')
    expect(r.code, r.err).toBe(0)
    expect(r.out.split('\n')[0]).toMatch(/STEP$/)
    expect(r.out).toContain('[app] COPY random.bin /random.bin')
    const json = JSON.parse((await run('cache', 'ls', '--format', 'json')).out) as { kind: string; step?: string }[]
    expect(json.filter((x) => x.kind === 'blob' && x.step === '[app] COPY zeros.bin /zeros.bin').length).toBe(1)
  })
})
