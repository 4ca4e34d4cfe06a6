/**
 * SBOM and provenance attestations as BuildKit stores them: an image with a dpkg database (two
 * installed packages, one removed), an npm app (node_modules and a lockfile) and a Python
 * distribution on a registry base. The SBOM lists exactly the installed packages with purls and
 * the layer each came from; the provenance names the base by digest and, in max mode only, the
 * build args; no secret value appears anywhere; the archive loads and runs in podman, its
 * manifest.json lists only the image; a push carries the attestations and `inspect
 * --attestations` reads them back from the archive and the registry.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image, type LocalBuildResult } from '../../src/index.js'
import type { ImageIndex, Manifest } from '../../src/oci/types.js'
import { skopeoPush, startTestRegistry, type TestRegistry } from '../helpers/registry.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { podmanCleanup, podmanLoadAndRun, requireTools, runTool } from '../helpers/tools.js'

const bed = requireTools(['docker-registry', 'skopeo', 'podman', 'runc'])
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const SECRET = 'sekret-VALUE-7f3a9c'

const DPKG_STATUS = `Package: libfoo1
Status: install ok installed
Architecture: amd64
Version: 1:2.3-4+deb12u1
Source: foo
Description: installed one
 with a continuation line

Package: bar-tools
Status: install ok installed
Architecture: all
Version: 0.9-1

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 5.0-2
`

interface Statement { _type: string; subject: { name: string; digest: { sha256: string } }[]; predicateType: string; predicate: Record<string, any> }

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
}

describe.skipIf(bed.skip)('attestations', () => {
  let reg: TestRegistry
  let work: string
  let context: string
  let base: string
  let baseDigest: string

  const app = () => image()
    .from(base)
    .copy('rootfs/', '/')
    .run('rm -rf /app/node_modules/gone && echo hello > /app/hello', { network: 'none', mounts: [{ type: 'secret', id: 'tok', target: '/run/secrets/tok', required: true, mode: 0o400, uid: 0, gid: 0 }] })
    .cmd(['cat', '/app/hello'])

  const build = (attest: { sbom?: boolean; provenance?: 'min' | 'max' }, extra: Record<string, unknown> = {}) =>
    app().build({
      context, cacheDir: join(work, 'cache'), network: 'none', attest, buildArgs: { VERSION: '1.2.3' },
      secrets: { tok: { value: SECRET } }, labels: { 'org.example.team': 'supply' }, ...extra,
    }) as Promise<LocalBuildResult>

  /** The archive's index, its attestation manifest and statements by predicate type. */
  function readArchive(tar: string) {
    const member = (name: string) => spawnSync('tar', ['-xOf', tar, name], { maxBuffer: 256 << 20 }).stdout as Buffer
    const blob = (d: string) => member(`blobs/sha256/${d.slice(7)}`)
    const top = JSON.parse(member('index.json').toString()) as ImageIndex
    const index = JSON.parse(blob(top.manifests[0]!.digest).toString()) as ImageIndex
    const att = index.manifests.find((m) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest')!
    const attManifest = JSON.parse(blob(att.digest).toString()) as Manifest
    const statements = new Map(attManifest.layers.map((l) => [l.annotations!['in-toto.io/predicate-type']!, JSON.parse(blob(l.digest).toString()) as Statement]))
    return { top, index, att, attManifest, statements, member, blob }
  }

  beforeAll(async () => {
    work = await tmpDir('ism-attest-')
    context = join(work, 'ctx')
    reg = await startTestRegistry()
    baseDigest = await skopeoPush(reg, `oci-archive:${busyboxArchive()}`, 'base/busybox:1')
    base = `${reg.host}/base/busybox:1`
    const r = join(context, 'rootfs')
    write(join(r, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    write(join(r, 'var/lib/dpkg/status'), DPKG_STATUS)
    write(join(r, 'app/node_modules/express/package.json'), JSON.stringify({ name: 'express', version: '4.19.2' }))
    write(join(r, 'app/node_modules/@types/node/package.json'), JSON.stringify({ name: '@types/node', version: '20.11.0' }))
    write(join(r, 'app/node_modules/express/node_modules/debug/package.json'), JSON.stringify({ name: 'debug', version: '2.6.9' }))
    write(join(r, 'app/node_modules/gone/package.json'), JSON.stringify({ name: 'gone', version: '1.0.0' }))
    write(join(r, 'app/package-lock.json'), JSON.stringify({
      name: 'app', version: '1.0.0', lockfileVersion: 3,
      packages: {
        '': { name: 'app', version: '1.0.0' },
        'node_modules/express': { version: '4.19.2', resolved: 'https://registry.npmjs.org/express/-/express-4.19.2.tgz' },
        'node_modules/@types/node': { version: '20.11.0' },
        'node_modules/express/node_modules/debug': { version: '2.6.9' },
        'node_modules/left-pad': { version: '1.3.0', resolved: 'https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz' },
        'node_modules/vitest': { version: '4.0.0', dev: true },
      },
    }))
    write(join(r, 'usr/lib/python3/dist-packages/Requests_Toolbelt-1.0.0.dist-info/METADATA'), 'Metadata-Version: 2.1\nName: Requests_Toolbelt\nVersion: 1.0.0\n\nName: not-this\n')
  })
  afterAll(async () => {
    await Promise.all([reg?.stop(), podmanCleanup()])
    await cleanupTmpDirs()
  })

  it('SBOM lists exactly the installed packages with purls; provenance max names the base by digest and the args; no secret anywhere', async () => {
    const dest = join(work, 'max.tar')
    const result = await build({ sbom: true, provenance: 'max' }, { output: { type: 'oci', dest }, tags: ['example.test/app:1'] })
    const { index, att, attManifest, statements, member, top } = readArchive(dest)
    const img = result.images![0]!
    expect(result.digest).toBe(top.manifests[0]!.digest)
    // The layout: the image, then its attestation manifest (unknown/unknown, annotated with the image's digest).
    expect(index.manifests).toHaveLength(2)
    expect(index.manifests[0]).toMatchObject({ digest: img.digest, platform: { os: 'linux' } })
    expect(att.platform).toEqual({ os: 'unknown', architecture: 'unknown' })
    expect(att.annotations).toEqual({ 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': img.digest })
    expect(attManifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.in-toto+json', 'application/vnd.in-toto+json'])
    expect([...statements.keys()]).toEqual(['https://spdx.dev/Document', 'https://slsa.dev/provenance/v0.2'])

    const sbom = statements.get('https://spdx.dev/Document')!
    expect(sbom._type).toBe('https://in-toto.io/Statement/v0.1')
    expect(sbom.subject).toEqual([{ name: 'pkg:docker/example.test/app:1?platform=linux%2Famd64', digest: { sha256: img.digest.slice(7) } }])
    const doc = sbom.predicate
    expect(doc.spdxVersion).toBe('SPDX-2.3')
    const pkgs = (doc.packages as { SPDXID: string; name: string; versionInfo: string; comment?: string; externalRefs?: { referenceLocator: string }[] }[]).filter((p) => p.externalRefs)
    expect(pkgs.map((p) => p.externalRefs![0]!.referenceLocator).sort()).toEqual([
      'pkg:deb/debian/bar-tools@0.9-1?arch=all&distro=debian-12',
      'pkg:deb/debian/libfoo1@1%3A2.3-4%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=foo',
      'pkg:npm/%40types/node@20.11.0',
      'pkg:npm/debug@2.6.9',
      'pkg:npm/express@4.19.2',
      'pkg:npm/left-pad@1.3.0',
      'pkg:pypi/requests-toolbelt@1.0.0',
    ])
    const copyLayer = img.layers.at(-2)!
    for (const p of pkgs) {
      expect(p.SPDXID).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/)
      expect(p.versionInfo).not.toBe('')
      expect(p.comment).toBe(`layerID: ${copyLayer.diffId}`)
    }
    expect(new Set(pkgs.map((p) => p.SPDXID)).size).toBe(pkgs.length)

    const prov = statements.get('https://slsa.dev/provenance/v0.2')!.predicate
    expect(prov.buildType).toBe('https://imagesmith.dev/provenance/build/v1')
    expect(prov.materials).toContainEqual({ uri: `pkg:docker/${reg.host}/base/busybox@1?platform=linux%2Famd64`, digest: { sha256: baseDigest.slice(7) } })
    expect(prov.invocation.parameters.args).toEqual({ VERSION: '1.2.3' })
    expect(prov.invocation.parameters.labels).toEqual({ 'org.example.team': 'supply' })
    expect(prov.invocation.parameters.secrets).toEqual([{ id: 'tok' }])
    const runVertex = (prov.buildConfig.vertices as { kind: string; cacheKey?: string }[]).find((v) => v.kind === 'run')!
    expect(runVertex.cacheKey).toMatch(/^sha256:[0-9a-f]{64}$/)
    // No secret value in any file of the archive (blobs and layout files alike).
    const all = spawnSync('tar', ['-xOf', dest], { maxBuffer: 256 << 20 }).stdout as Buffer
    expect(all.length).toBeGreaterThan(100_000)
    expect(all.includes(SECRET)).toBe(false)
    // Docker's manifest.json lists the runnable image only.
    const dockerManifest = JSON.parse(member('manifest.json').toString()) as { Config: string }[]
    expect(dockerManifest).toEqual([expect.objectContaining({ Config: `blobs/sha256/${img.configDigest.slice(7)}`, RepoTags: ['example.test/app:1'] })])
  })

  it('provenance min leaves out args, labels and secret ids; the image digest is the one built without attestations', async () => {
    const dest = join(work, 'min.tar')
    const result = await build({ provenance: 'min' }, { output: { type: 'oci', dest } })
    const plain = await build({})
    expect(plain.index).toBeUndefined()
    expect(result.images![0]!.digest).toBe(plain.digest)
    // Without provenance (no build times, no invocation id) the index is reproducible too.
    const sbomOnly = await build({ sbom: true })
    expect((await build({ sbom: true })).digest).toBe(sbomOnly.digest)
    expect(sbomOnly.images![0]!.digest).toBe(plain.digest)
    const { statements } = readArchive(dest)
    expect([...statements.keys()]).toEqual(['https://slsa.dev/provenance/v0.2'])
    const prov = statements.get('https://slsa.dev/provenance/v0.2')!.predicate
    expect(prov.invocation.parameters).not.toHaveProperty('args')
    expect(prov.invocation.parameters).not.toHaveProperty('labels')
    expect(prov.invocation.parameters).not.toHaveProperty('secrets')
    expect(prov).not.toHaveProperty('buildConfig')
    expect(prov.materials).toContainEqual(expect.objectContaining({ digest: { sha256: baseDigest.slice(7) } }))
  })

  it('the CLI: --sbom=true --provenance=mode=max records the build script as entryPoint and its text; a local base is a material without digest', async () => {
    const script = join(context, 'build.ts')
    writeFileSync(script, `import { image } from ${JSON.stringify(join(root, 'src', 'index.ts'))}\nexport default image().from(${JSON.stringify(`oci-archive:${busyboxArchive()}`)}).copy('rootfs/app/', '/app/')\n`)
    const dest = join(work, 'cli.tar')
    const r = spawnSync(process.execPath, [bin, 'build', script, '--context', context, '--sbom=true', '--provenance=mode=max', '--build-arg', 'X=1', '-o', `type=oci,dest=${dest}`, '--progress', 'quiet'], {
      encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache') },
    })
    expect(r.status, r.stderr).toBe(0)
    const { statements } = readArchive(dest)
    expect([...statements.keys()]).toEqual(['https://spdx.dev/Document', 'https://slsa.dev/provenance/v0.2'])
    const prov = statements.get('https://slsa.dev/provenance/v0.2')!.predicate
    expect(prov.invocation.configSource.entryPoint).toBe(script)
    expect(prov.invocation.parameters).toMatchObject({ frontend: 'script', args: { X: '1' }, platforms: ['linux/amd64'] })
    expect(prov.buildConfig.source.text).toBe(readFileSync(script, 'utf8'))
    expect(prov.materials).toEqual([{ uri: `oci-archive:${busyboxArchive()}` }])
    expect(prov.metadata.completeness.materials).toBe(false)
  })

  it('an oci-layout output carries the attestations: skopeo reads the image, inspect --attestations the statements', async () => {
    const dest = join(work, 'layout')
    const r = await build({ sbom: true, provenance: 'min' }, { output: { type: 'oci-layout', dest } })
    const raw = JSON.parse((await runTool('skopeo', ['inspect', '--raw', `oci:${dest}`])).stdout) as ImageIndex
    expect(raw.manifests.map((m) => m.digest)).toEqual([r.images![0]!.digest, expect.stringMatching(/^sha256:/)])
    expect(JSON.parse((await runTool('skopeo', ['inspect', `oci:${dest}`])).stdout)).toMatchObject({ Digest: r.digest, Os: 'linux', Architecture: 'amd64' }) // the index's digest, the image's platform
    const out = spawnSync(process.execPath, [bin, 'inspect', dest, '--attestations', '--format', 'json'], { encoding: 'utf8' })
    expect(out.status, out.stderr).toBe(0)
    expect((JSON.parse(out.stdout) as { statements: { predicateType: string }[] }[])[0]!.statements.map((s) => s.predicateType)).toEqual(['https://spdx.dev/Document', 'https://slsa.dev/provenance/v0.2'])
  })

  it('a multi-platform build attests each platform image: one attestation manifest per image, after them all', async () => {
    const dest = join(work, 'multi.tar')
    const r = await image().copy('rootfs/', '/').build({
      context, cacheDir: join(work, 'cache'), platforms: ['linux/amd64', 'linux/arm64'], attest: { sbom: true }, output: { type: 'oci', dest },
    }) as LocalBuildResult
    const { index, blob } = readArchive(dest)
    expect(index.manifests.map((m) => `${m.platform!.os}/${m.platform!.architecture}`)).toEqual(['linux/amd64', 'linux/arm64', 'unknown/unknown', 'unknown/unknown'])
    expect(index.manifests.slice(2).map((m) => m.annotations!['vnd.docker.reference.digest'])).toEqual(r.images!.map((i) => i.digest))
    for (const [i, m] of index.manifests.slice(2).entries()) {
      const layer = (JSON.parse(blob(m.digest).toString()) as Manifest).layers[0]!
      const st = JSON.parse(blob(layer.digest).toString()) as Statement
      expect(st.subject[0]!.digest.sha256).toBe(r.images![i]!.digest.slice(7))
      expect(st.subject[0]!.name).toBe('_')
      expect((st.predicate.packages as unknown[]).length).toBe(9) // the image, its 7 packages and gone (no RUN removes it here)
    }
  })

  it('the archive loads and runs in podman; a push carries the attestations; inspect --attestations reads both back', async () => {
    const dest = join(work, 'max.tar')
    const ran = await podmanLoadAndRun(dest)
    expect(ran.stdout).toBe('hello\n')

    const tag = `${reg.host}/app/supply:1`
    const pushed = await build({ sbom: true, provenance: 'max' }, { output: { type: 'registry' }, tags: [tag] })
    const raw = JSON.parse((await runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${tag}`])).stdout) as ImageIndex
    expect(raw.manifests).toHaveLength(2)
    expect(raw.manifests[1]!.annotations?.['vnd.docker.reference.digest']).toBe(pushed.images![0]!.digest)
    const attRaw = JSON.parse((await runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/app/supply@${raw.manifests[1]!.digest}`])).stdout) as Manifest
    expect(attRaw.layers.map((l) => l.annotations?.['in-toto.io/predicate-type'])).toEqual(['https://spdx.dev/Document', 'https://slsa.dev/provenance/v0.2'])

    // An archive, a registry reference, and the local image the first build named in its store.
    for (const target of [dest, tag, 'example.test/app:1']) {
      const r = spawnSync(process.execPath, [bin, 'inspect', target, '--attestations', '--format', 'json'], { encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache') } })
      expect(r.status, r.stderr).toBe(0)
      const found = JSON.parse(r.stdout) as { subject: string; platform: string; shape: string; statements: { predicateType: string; predicate: Record<string, any> }[] }[]
      expect(found).toHaveLength(1)
      expect(found[0]).toMatchObject({ platform: 'linux/amd64', shape: 'image' })
      expect(found[0]!.statements.map((s) => s.predicateType)).toEqual(['https://spdx.dev/Document', 'https://slsa.dev/provenance/v0.2'])
      // The predicate unwrapped is a document `grype sbom:` takes (spdxVersion at the top).
      expect(found[0]!.statements[0]!.predicate.spdxVersion).toBe('SPDX-2.3')
    }
    const text = spawnSync(process.execPath, [bin, 'inspect', dest, '--attestations'], { encoding: 'utf8' })
    expect(text.stdout).toContain('package     pkg:npm/left-pad@1.3.0')
    expect(text.stdout).toContain(`material    pkg:docker/${reg.host}/base/busybox@1?platform=linux%2Famd64 sha256:${baseDigest.slice(7)}`)
    expect(readFileSync(dest).length).toBeGreaterThan(0)
  })
})
