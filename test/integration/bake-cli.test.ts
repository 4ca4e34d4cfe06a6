/**
 * `imagesmith bake`: a build script's exported services in one solve (out-dir archives, per-target
 * metadata, target-labelled progress, a no-op re-run that rewrites nothing, a named subset), a buildx
 * bake JSON file (group, inherits, args, `contexts: { base: "target:base" }`) whose base runs once,
 * and a failing target named on the command line.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc', 'tar'])
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const api = join(root, 'src', 'index.ts')
const TOKEN_RUN = 'head -c 16 /dev/urandom | od -An -tx1 > /token'

let work: string
const cli = (args: string[], cache: string) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: cache, SOURCE_DATE_EPOCH: '0' }, timeout: 180_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

type Metadata = Record<string, Record<string, unknown> & { 'imagesmith.vertices': { description: string; cached: boolean; key?: string }[]; 'imagesmith.layers': string[] }>

beforeAll(async () => {
  work = await tmpDir('ism-bake-cli-')
  for (const s of ['api', 'web', 'worker']) {
    mkdirSync(join(work, s), { recursive: true })
    writeFileSync(join(work, s, 'app.txt'), `${s}\n`)
  }
  writeFileSync(
    join(work, 'build.ts'),
    `import { image } from ${JSON.stringify(api)}
const base = image().from(${JSON.stringify(`oci-archive:${busyboxArchive()}`)}).run(${JSON.stringify(TOKEN_RUN)})
const service = (name: string) => base.copy(\`\${name}/app.txt\`, '/srv/app.txt').run(\`cp /srv/app.txt /srv/\${name}.out\`)
export const api = service('api')
export const web = service('web')
export const worker = service('worker')
export default { api, web, worker }
`,
  )
  writeFileSync(
    join(work, 'broken.ts'),
    `import { image } from ${JSON.stringify(api)}
const base = image().from(${JSON.stringify(`oci-archive:${busyboxArchive()}`)})
export default { api: base.run('true'), broken: base.run('echo broken >&2; exit 3') }
`,
  )
  // A buildx bake file: a group, a shared parent by inherits with an arg, and the base as a target context.
  mkdirSync(join(work, 'df'), { recursive: true })
  writeFileSync(join(work, 'df', 'base.Dockerfile'), `ARG BASE\nFROM $BASE\nRUN ${TOKEN_RUN}\n`)
  writeFileSync(join(work, 'df', 'app.Dockerfile'), 'FROM base\nARG NAME\nRUN echo "$NAME" > /name\n')
  writeFileSync(
    join(work, 'docker-bake.json'),
    JSON.stringify({
      group: { default: { targets: ['app1', 'app2'] } },
      target: {
        _common: { context: 'df', args: { BASE: `oci-archive:${busyboxArchive()}` } },
        base: { inherits: ['_common'], dockerfile: 'base.Dockerfile' },
        app1: { inherits: ['_common'], dockerfile: 'app.Dockerfile', args: { NAME: 'one' }, contexts: { base: 'target:base' } },
        app2: { inherits: ['_common'], dockerfile: 'app.Dockerfile', args: { NAME: 'two' }, contexts: { base: 'target:base' } },
      },
    }),
  )
})
afterAll(() => cleanupTmpDirs())

describe.skipIf(bed.skip)('imagesmith bake', () => {
  it('bakes a script\'s default targets in one solve: out-dir archives, metadata keyed by target, labelled progress; a no-op re-run rewrites nothing', () => {
    const cache = join(work, 'cache-a')
    const args = ['bake', 'build.ts', '--out-dir', 'out', '--metadata-file', 'meta.json', '--progress', 'plain']
    const r = cli(args, cache)
    expect(r.stderr).not.toMatch(/error/)
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['api', 'web', 'worker'])
    expect(r.stderr.split('\n').filter((l) => l.includes(`RUN ${TOKEN_RUN}`))).toEqual([expect.stringMatching(/^#\d+ \[api,web,worker\] RUN /)])
    expect(r.stderr).toMatch(/^#\d+ \[web\] RUN cp \/srv\/app.txt \/srv\/web.out$/m)
    const meta = JSON.parse(readFileSync(join(work, 'meta.json'), 'utf8')) as Metadata
    expect(Object.keys(meta)).toEqual(['api', 'web', 'worker'])
    for (const [i, name] of ['api', 'web', 'worker'].entries()) {
      expect(meta[name]!['containerimage.digest']).toBe(lines[i]!.split(' ')[1])
      expect(meta[name]!['containerimage.config.digest']).toMatch(/^sha256:/)
      expect(meta[name]!['imagesmith.output']).toBe(join(work, 'out', `${name}.tar`))
    }
    // The shared base's layers (busybox and the token) are one set of blobs.
    expect(new Set(['api', 'web', 'worker'].map((n) => meta[n]!['imagesmith.layers'].slice(0, 2).join()))).toHaveLength(1)
    const mtimes = ['api', 'web', 'worker'].map((n) => statSync(join(work, 'out', `${n}.tar`)).mtimeMs)

    const again = cli(args, cache)
    expect(again.code).toBe(0)
    expect(again.stdout).toBe(r.stdout)
    expect(['api', 'web', 'worker'].map((n) => statSync(join(work, 'out', `${n}.tar`)).mtimeMs)).toEqual(mtimes)
    const meta2 = JSON.parse(readFileSync(join(work, 'meta.json'), 'utf8')) as Metadata
    for (const n of ['api', 'web', 'worker']) expect(meta2[n]!['imagesmith.vertices'].filter((v) => v.key !== undefined && !v.cached)).toEqual([])
  })

  it('builds only the named targets', () => {
    const r = cli(['bake', 'build.ts', 'web', '--progress', 'plain'], join(work, 'cache-b'))
    expect(r.code).toBe(0)
    expect(r.stdout.trim().split('\n').map((l) => l.split(' ')[0])).toEqual(['web'])
    expect(r.stderr).not.toMatch(/\[api|worker/)
  })

  it('applies --set to matching targets, with {target}', () => {
    const r = cli(['bake', 'build.ts', '--set', '*.tags=registry.example/{target}:1.2', '--print'], join(work, 'cache-b'))
    expect(r.code).toBe(0)
    const printed = JSON.parse(r.stdout) as { target: Record<string, { tags: string[] }> }
    expect(printed.target.web!.tags).toEqual(['registry.example/web:1.2'])
  })

  it('bakes a buildx bake JSON file: group, inherits, args, and target:base as a context built once', () => {
    const r = cli(['bake', '-f', 'docker-bake.json', '--metadata-file', 'file-meta.json', '--progress', 'plain'], join(work, 'cache-c'))
    expect(r.stderr).not.toMatch(/error/)
    expect(r.code).toBe(0)
    expect(r.stdout.trim().split('\n').map((l) => l.split(' ')[0])).toEqual(['app1', 'app2'])
    expect(r.stderr.split('\n').filter((l) => l.includes(`RUN ${TOKEN_RUN}`))).toHaveLength(1)
    const meta = JSON.parse(readFileSync(join(work, 'file-meta.json'), 'utf8')) as Metadata
    expect(meta.app1!['imagesmith.layers'].slice(0, 2)).toEqual(meta.app2!['imagesmith.layers'].slice(0, 2))
    expect(meta.app1!['containerimage.digest']).not.toBe(meta.app2!['containerimage.digest'])
    expect(r.stderr).toMatch(/\[app1\] RUN echo "\$NAME" > \/name/)
  })

  it('takes cache-to and cache-from from a bake file: a bake on an empty store importing the exported cache runs nothing', () => {
    const file = {
      group: { default: { targets: ['app1', 'app2'] } },
      target: {
        _common: { context: 'df', args: { BASE: `oci-archive:${busyboxArchive()}` }, 'cache-from': ['type=local,src=bake-cache'] },
        base: { inherits: ['_common'], dockerfile: 'base.Dockerfile' },
        app1: { inherits: ['_common'], dockerfile: 'app.Dockerfile', args: { NAME: 'one' }, contexts: { base: 'target:base' }, 'cache-to': ['type=local,dest=bake-cache,mode=max'] },
        app2: { inherits: ['_common'], dockerfile: 'app.Dockerfile', args: { NAME: 'two' }, contexts: { base: 'target:base' } },
      },
    }
    writeFileSync(join(work, 'cached-bake.json'), JSON.stringify(file))
    const first = cli(['bake', '-f', 'cached-bake.json', '--metadata-file', 'cached-1.json', '--progress', 'quiet'], join(work, 'cache-e'))
    expect(first.code).toBe(0)
    // Nothing to import yet: said once, and the bake goes on cold.
    expect(first.stderr.split('\n').filter((l) => l.startsWith('warning: ') && l.includes('bake-cache'))).toHaveLength(1)
    expect(existsSync(join(work, 'bake-cache', 'index.json'))).toBe(true)
    const again = cli(['bake', '-f', 'cached-bake.json', 'app1', '--metadata-file', 'cached-2.json', '--progress', 'quiet'], join(work, 'cache-f'))
    expect(again.code).toBe(0)
    const one = JSON.parse(readFileSync(join(work, 'cached-1.json'), 'utf8')) as Metadata
    const two = JSON.parse(readFileSync(join(work, 'cached-2.json'), 'utf8')) as Metadata
    expect(two.app1!['imagesmith.vertices'].filter((v) => v.key !== undefined && !v.cached).map((v) => v.description)).toEqual([])
    expect(two.app1!['containerimage.digest']).toBe(one.app1!['containerimage.digest'])
  })

  it('gives a bake file target its attest entries: that target\'s output is an index with an SBOM, the other a plain image', () => {
    const file = {
      target: {
        _common: { context: 'df', args: { BASE: `oci-archive:${busyboxArchive()}` } },
        base: { inherits: ['_common'], dockerfile: 'base.Dockerfile' },
        app1: { inherits: ['_common'], dockerfile: 'app.Dockerfile', args: { NAME: 'one' }, contexts: { base: 'target:base' }, attest: ['type=sbom'] },
        app2: { inherits: ['_common'], dockerfile: 'app.Dockerfile', args: { NAME: 'two' }, contexts: { base: 'target:base' } },
      },
      group: { default: { targets: ['app1', 'app2'] } },
    }
    writeFileSync(join(work, 'attest-bake.json'), JSON.stringify(file))
    const r = cli(['bake', '-f', 'attest-bake.json', '--metadata-file', 'attest-meta.json', '--progress', 'quiet'], join(work, 'cache-g'))
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const meta = JSON.parse(readFileSync(join(work, 'attest-meta.json'), 'utf8')) as Record<string, { 'containerimage.descriptor': { mediaType: string } }>
    expect(meta.app1!['containerimage.descriptor'].mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(meta.app2!['containerimage.descriptor'].mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
  })

  it('refuses bake file keys one solve cannot honour per target (pull without --pull, call other than build), naming target and key', () => {
    const write = (target: Record<string, unknown>) => writeFileSync(join(work, 'refused-bake.json'), JSON.stringify({ target: { app: { context: 'df', dockerfile: 'base.Dockerfile', args: { BASE: `oci-archive:${busyboxArchive()}` }, ...target } } }))
    write({ pull: true })
    const pulled = cli(['bake', '-f', 'refused-bake.json', 'app', '--progress', 'quiet'], join(work, 'cache-h'))
    expect(pulled.code).toBe(1)
    expect(pulled.stderr).toMatch(/BAKE_FILE_INVALID\]: target "app": pull /)
    write({ call: 'check' })
    const called = cli(['bake', '-f', 'refused-bake.json', 'app', '--progress', 'quiet'], join(work, 'cache-h'))
    expect(called.code).toBe(1)
    expect(called.stderr).toMatch(/BAKE_FILE_INVALID\]: target "app": call "check"/)
  })

  it('fails with the failing target named', () => {
    const r = cli(['bake', 'broken.ts', '--out-dir', 'out-broken', '--progress', 'quiet'], join(work, 'cache-d'))
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error \[BAKE_TARGET_FAILED\]: target "broken": /m)
    expect(existsSync(join(work, 'out-broken', 'broken.tar'))).toBe(false)
  })
})
