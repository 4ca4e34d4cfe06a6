/**
 * examples/supply-chain as its comment says to run it, offline: `--sbom=true --provenance=mode=max`
 * to an OCI archive; `inspect --attestations --format json` shows the SBOM with the vendored npm
 * package and the provenance; the image inside still loads and runs in podman.
 */
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { createPodmanStore, requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc', 'podman'])
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const example = join(root, 'examples', 'supply-chain')

let work: string
beforeAll(async () => {
  work = await tmpDir('ism-supply-chain-example-')
})
afterAll(cleanupTmpDirs, 60_000)

const cli = (args: string[]) =>
  // cwd = the checkout: its tsconfig maps 'imagesmith' to src/.
  spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), BASE_IMAGE: `oci-archive:${busyboxArchive()}` }, timeout: 300_000 })

interface Shown { statements: { predicateType: string; predicate: Record<string, any> }[] }

describe.skipIf(bed.skip)('examples/supply-chain', () => {
  it('attaches an SBOM naming the vendored npm package and a max-mode provenance; the image loads and runs in podman', async () => {
    const dest = join(work, 'app.tar')
    const r = cli(['build', join(example, 'build.ts'), '--context', example, '--sbom=true', '--provenance=mode=max', '-o', `type=oci,dest=${dest}`, '--progress', 'quiet'])
    expect(r.status, r.stderr).toBe(0)
    const shown = cli(['inspect', dest, '--attestations', '--format', 'json'])
    expect(shown.status, shown.stderr).toBe(0)
    const [first] = JSON.parse(shown.stdout) as Shown[]
    expect(first!.statements.map((s) => s.predicateType)).toEqual(['https://spdx.dev/Document', 'https://slsa.dev/provenance/v0.2'])
    const packages = first!.statements[0]!.predicate['packages'] as { name: string; versionInfo: string; externalRefs?: { referenceLocator: string }[] }[]
    const leftPad = packages.find((p) => p.name === 'left-pad')
    expect(leftPad?.versionInfo).toBe('1.3.0')
    expect(leftPad?.externalRefs?.map((e) => e.referenceLocator)).toContain('pkg:npm/left-pad@1.3.0')
    const provenance = first!.statements[1]!.predicate
    expect(JSON.stringify(provenance['buildConfig'])).toContain('RUN date -u > built-at.txt')
    const podman = await createPodmanStore()
    try {
      await podman.podman(['load', '-i', dest], { timeoutMs: 120_000 })
      const images = await podman.podman(['images', '--format', '{{.ID}}'])
      const run = await podman.run(images.stdout.trim().split('\n')[0]!, { args: ['cat', '/app/node_modules/left-pad/package.json'] })
      expect(run.stdout).toContain('"version": "1.3.0"')
    } finally {
      await podman.cleanup()
    }
  }, 300_000)
})
