/**
 * Reading attestations in both manifest shapes BuildKit writes (classic image shape and the OCI
 * artifact shape with artifactType/subject), the CLI's buildx-style attestation flags, and the
 * context's git commit read without running git.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { gitSourceOf } from '../../src/attest/git-commit.js'
import { readAttestations } from '../../src/attest/read.js'
import { resolveAttest } from '../../src/attest/options.js'
import { resolveBuildOptions } from '../../src/pipeline/resolve-options.js'
import { parseArgs } from '../../src/cli/args.js'
import { supplyOptions } from '../../src/cli/supply-flags.js'
import type { Descriptor, ImageIndex } from '../../src/oci/types.js'

const dirs: string[] = []
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

function blobs() {
  const m = new Map<string, Buffer>()
  const put = (v: unknown, mediaType: string, annotations?: Record<string, string>): Descriptor => {
    const b = Buffer.from(JSON.stringify(v))
    const digest = `sha256:${createHash('sha256').update(b).digest('hex')}` as const
    m.set(digest, b)
    return { mediaType, digest, size: b.length, ...(annotations ? { annotations } : {}) }
  }
  return { put, read: async (d: Descriptor) => m.get(d.digest)! }
}

const IMAGE = `sha256:${'a'.repeat(64)}` as const
const statement = (type: string) => ({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: '_', digest: { sha256: 'a'.repeat(64) } }], predicateType: type, predicate: { spdxVersion: 'SPDX-2.3' } })

describe('readAttestations', () => {
  it('reads the OCI artifact shape (artifactType, subject, empty config) and the classic shape', async () => {
    const b = blobs()
    const layer = b.put(statement('https://spdx.dev/Document'), 'application/vnd.in-toto+json', { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' })
    const other = b.put({ x: 1 }, 'application/json')
    const artifact = b.put({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.docker.attestation.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 },
      layers: [layer, other], subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: IMAGE, size: 1 },
    }, 'application/vnd.oci.image.manifest.v1+json')
    const classic = b.put({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: IMAGE, size: 1 }, layers: [layer] }, 'application/vnd.oci.image.manifest.v1+json')
    const index: ImageIndex = {
      schemaVersion: 2,
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: IMAGE, size: 1, platform: { os: 'linux', architecture: 'arm64' } },
        // The artifact shape found by its subject alone (no index annotations), the classic one by its annotations.
        { ...artifact, platform: { os: 'unknown', architecture: 'unknown' } },
        { ...classic, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': IMAGE } },
        // Another reference type is ignored, as the layout says.
        { ...classic, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'something-else', 'vnd.docker.reference.digest': IMAGE } },
      ],
    }
    const found = await readAttestations(index, b.read)
    expect(found.map((f) => [f.shape, f.subject, f.platform, f.statements.map((s) => s.predicateType)])).toEqual([
      ['artifact', IMAGE, 'linux/arm64', ['https://spdx.dev/Document']],
      ['image', IMAGE, 'linux/arm64', ['https://spdx.dev/Document']],
    ])
  })
})

describe('attestation options and flags', () => {
  const opts = (...argv: string[]) => supplyOptions(parseArgs(['build', 'b.ts', ...argv]), {})
  it('takes buildx spellings: --sbom=true, --provenance=mode=max|true|false, --attest type=…', () => {
    expect(opts('--sbom=true', '--provenance=mode=max')).toEqual({ attest: { sbom: true, provenance: 'max' } })
    expect(opts('--provenance=true')).toEqual({ attest: { provenance: 'min' } })
    expect(opts('--provenance=false')).toEqual({})
    expect(opts('--attest', 'type=sbom', '--attest', 'type=provenance,mode=min')).toEqual({ attest: { sbom: true, provenance: 'min' } })
    expect(opts('--reproducible=false')).toEqual({ reproducible: false })
    expect(() => opts('--attest', 'type=vex')).toThrow(/sbom or provenance/)
    expect(() => opts('--provenance=mode=full')).toThrow(/min or max/)
  })
  it('refuses a bad attest option with ATTEST_OPTION_INVALID', () => {
    expect(() => resolveAttest({ provenance: 'full' as never })).toThrow(expect.objectContaining({ code: 'ATTEST_OPTION_INVALID', details: { option: 'attest.provenance', value: 'full' } }))
    expect(resolveAttest({ sbom: false, provenance: false })).toBeUndefined()
    // Checked with the build's options, before any work.
    expect(() => resolveBuildOptions({ attest: { sboms: true } as never })).toThrow(expect.objectContaining({ code: 'ATTEST_OPTION_INVALID', details: { option: 'attest.sboms', value: true } }))
    expect(resolveBuildOptions({ attest: { provenance: true } }).attest).toEqual({ sbom: false, provenance: 'min' })
  })
})

describe('gitSourceOf', () => {
  it('reads HEAD, a packed ref and the origin URL without credentials, from a subdirectory', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ism-git-'))
    dirs.push(d)
    mkdirSync(join(d, '.git'))
    mkdirSync(join(d, 'app'))
    writeFileSync(join(d, '.git', 'HEAD'), 'ref: refs/heads/main\n')
    writeFileSync(join(d, '.git', 'packed-refs'), `# pack-refs with: peeled\n${'c'.repeat(40)} refs/heads/main\n`)
    writeFileSync(join(d, '.git', 'config'), '[core]\n\tbare = false\n[remote "origin"]\n\turl = https://user:tok3n@git.example/org/app.git\n')
    expect(await gitSourceOf(join(d, 'app'))).toEqual({ commit: 'c'.repeat(40), url: 'https://git.example/org/app.git' })
    writeFileSync(join(d, '.git', 'HEAD'), `${'d'.repeat(40)}\n`)
    expect((await gitSourceOf(d))?.commit).toBe('d'.repeat(40))
  })
})

describe('readAttestations on a broken statement', () => {
  it('is BLOB_CORRUPT naming the blob', async () => {
    const b = blobs()
    const bad = Buffer.from('{not json')
    const badDigest = `sha256:${createHash('sha256').update(bad).digest('hex')}` as const
    const manifest = b.put({ schemaVersion: 2, config: { mediaType: 'x', digest: IMAGE, size: 1 }, layers: [{ mediaType: 'application/vnd.in-toto+json', digest: badDigest, size: bad.length, annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' } }] }, 'application/vnd.oci.image.manifest.v1+json')
    const index: ImageIndex = { schemaVersion: 2, manifests: [{ ...manifest, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': IMAGE } }] }
    const read = async (d: Descriptor) => (d.digest === badDigest ? bad : b.read(d))
    await expect(readAttestations(index, read)).rejects.toMatchObject({ code: 'BLOB_CORRUPT', details: { digest: badDigest } })
  })
})
