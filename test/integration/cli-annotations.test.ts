/**
 * buildx's --annotation through the CLI, read back where each type lands: the manifest in an OCI
 * archive (and its digest), index.json's own annotations, the manifest's descriptor in it; the
 * manifest a real docker-registry serves (skopeo inspect --raw). A rebuild that only changes the
 * annotations rewrites the archive the no-op check would otherwise keep.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js'
import { hostPlatform, formatPlatform } from '../../src/oci/platform.js'

const bed = requireTools(['docker-registry', 'skopeo'])
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const api = join(root, 'src', 'index.ts')

let work: string
let reg: TestRegistry
const cli = (args: string[]) => {
  const env = { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), DOCKER_CONFIG: join(work, 'docker-config') }
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', env, timeout: 300_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}
const tarJson = (archive: string, member: string) => JSON.parse(spawnSync('tar', ['-xOf', archive, member], { encoding: 'utf8' }).stdout)

beforeAll(async () => {
  work = await tmpDir('ism-annotations-')
  mkdirSync(join(work, 'docker-config'))
  writeFileSync(join(work, 'build.ts'), `import { image } from ${JSON.stringify(api)}
export default image().from('oci-archive:${busyboxArchive()}').env('ANNOTATED', '1')
`)
  if (!bed.skip) reg = await startTestRegistry()
}, 120_000)
afterAll(async () => {
  await reg?.stop()
  await cleanupTmpDirs()
}, 60_000)

describe.skipIf(bed.skip)('--annotation', () => {
  it('lands in the manifest, index.json and the descriptor of an OCI archive; a rebuild with other annotations rewrites it', () => {
    const out = join(work, 'image.tar')
    const base = ['build', 'build.ts', '--context', work, '--progress', 'quiet', '-o', `type=oci,dest=${out}`, '-t', 'app:1']
    const plain = cli(base)
    expect(plain.stderr).toBe('')
    const plainDigest = tarJson(out, 'index.json').manifests[0].digest

    const here = formatPlatform(hostPlatform())
    const r = cli([...base,
      '--annotation', 'org.opencontainers.image.title=app',
      '--annotation', 'index,manifest-descriptor:org.example.where=both=sides',
      '--annotation', `manifest[${here}]:org.example.platform=${here}`,
      '--annotation', 'index:org.opencontainers.image.ref.name=ignored-by-the-name'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const index = tarJson(out, 'index.json')
    expect(index.annotations).toEqual({ 'org.example.where': 'both=sides', 'org.opencontainers.image.ref.name': 'ignored-by-the-name' })
    const [desc] = index.manifests
    // The tag's names stay on the descriptor beside the descriptor annotation.
    expect(desc.annotations).toEqual({ 'org.example.where': 'both=sides', 'io.containerd.image.name': 'docker.io/library/app:1', 'org.opencontainers.image.ref.name': '1' })
    expect(desc.digest).not.toBe(plainDigest)
    expect(r.stdout.trim()).toBe(desc.digest)
    const manifest = tarJson(out, `blobs/sha256/${desc.digest.slice(7)}`)
    expect(manifest.annotations).toEqual({ 'org.opencontainers.image.title': 'app', 'org.example.platform': here })

    // Back to no annotations: the same layers and config, so only the annotations tell the archives apart.
    expect(cli(base).code).toBe(0)
    const again = tarJson(out, 'index.json')
    expect(again.annotations).toBeUndefined()
    expect(again.manifests[0].digest).toBe(plainDigest)
    expect(tarJson(out, `blobs/sha256/${plainDigest.slice(7)}`).annotations).toBeUndefined()
  })

  it('an OCI layout gets them too; skopeo reads the manifest annotations', async () => {
    const out = join(work, 'layout')
    const r = cli(['build', 'build.ts', '--context', work, '--progress', 'quiet', '-o', `type=oci-layout,dest=${out}`, '-t', 'app:2',
      '--annotation', 'manifest:org.example.k=v', '--annotation', 'index:org.example.i=1'])
    expect(r.stderr).toBe('')
    const raw = JSON.parse((await runTool('skopeo', ['inspect', '--raw', `oci:${out}:2`])).stdout)
    expect(raw.annotations).toEqual({ 'org.example.k': 'v' })
  })

  it('a push carries manifest annotations; index types have nowhere to go and fail before the build', async () => {
    const ref = `${reg.host}/team/annotated:1`
    const r = cli(['build', 'build.ts', '--context', work, '--progress', 'quiet', '-t', ref, '--push',
      '--annotation', 'org.opencontainers.image.description=pushed', '--annotation', 'manifest:org.example.n=2'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const raw = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])
    expect(JSON.parse(raw.stdout).annotations).toEqual({ 'org.opencontainers.image.description': 'pushed', 'org.example.n': '2' })
    const inspected = JSON.parse((await runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).stdout)
    expect(inspected.Digest).toBe(r.stdout.trim())

    for (const a of ['index:org.example.i=1', 'manifest-descriptor:org.example.d=1']) {
      const f = cli(['build', 'build.ts', '--context', work, '--progress', 'plain', '-t', `${reg.host}/team/annotated:2`, '--push', '--annotation', a])
      expect(f.code, a).toBe(1)
      expect(f.stderr, a).toContain('error [ANNOTATION_NOT_STORABLE]')
      expect(f.stderr, a).toContain('pushes one manifest and no index')
    }
    const tags = await runTool('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/team/annotated`])
    expect(JSON.parse(tags.stdout).Tags).toEqual(['1'])
  })

  it('index-descriptor, another platform and malformed annotations are refused', () => {
    const out = join(work, 'refused.tar')
    const d = cli(['build', 'build.ts', '--context', work, '-o', `type=oci,dest=${out}`, '--annotation', 'index-descriptor:org.example.x=1'])
    expect(d.code).toBe(1)
    expect(d.stderr).toContain('error [ANNOTATION_NOT_STORABLE]')
    expect(d.stderr).toContain('a single-platform image has none')
    const other = hostPlatform().architecture === 'amd64' ? 'linux/arm64' : 'linux/amd64'
    const p = cli(['build', 'build.ts', '--context', work, '-o', `type=oci,dest=${out}`, '--annotation', `manifest[${other}]:k=v`])
    expect(p.code).toBe(1)
    expect(p.stderr).toContain(`platform ${other} is not built`)
    for (const bad of ['novalue', '=v', 'bogus:k=v', 'manifest[x]:k=v', 'a:b:c d=v']) {
      const b = cli(['build', 'build.ts', '--context', work, '-o', `type=oci,dest=${out}`, '--annotation', bad])
      expect(b.code, bad).toBe(2)
      expect(b.stderr, bad).toContain('error: --annotation: invalid annotation')
    }
    expect(spawnSync('test', ['-e', out]).status).not.toBe(0)
  })
})
