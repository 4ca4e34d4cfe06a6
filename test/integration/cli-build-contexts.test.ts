/**
 * buildx's --build-context through the CLI with real Dockerfile builds (real runc): a directory
 * (COPY --from, RUN --mount=from, FROM; its own .dockerignore), docker-image:// from a real
 * docker-registry, oci-layout:// by tag and by digest replacing a stage of that name; the same
 * through a build script's `from`; and the sources refused by name.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxLayout, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'
import { canBuildRootless } from '../helpers/rootless-env.js'
import { seedBases, startTestRegistry, type TestRegistry } from '../helpers/registry.js'

const bed = requireTools(['runc', 'docker-registry', 'skopeo'], { needsRoot: !canBuildRootless() })
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
const layoutDigest = () => JSON.parse(readFileSync(join(busyboxLayout(), 'index.json'), 'utf8')).manifests[0].digest as string

beforeAll(async () => {
  work = await tmpDir('ism-build-contexts-')
  mkdirSync(join(work, 'docker-config'))
  mkdirSync(join(work, 'ctx'))
  mkdirSync(join(work, 'shared'))
  writeFileSync(join(work, 'shared', 'data.txt'), 'from-shared')
  writeFileSync(join(work, 'shared', 'secret.txt'), 'left out by the dir own .dockerignore')
  writeFileSync(join(work, 'shared', '.dockerignore'), 'secret.txt\n')
  writeFileSync(join(work, 'ctx', 'Dockerfile'), `FROM base AS stage1
RUN exit 1

FROM shared AS files

FROM busybox
COPY --from=shared data.txt /data.txt
COPY --from=files /data.txt /files-data.txt
COPY --from=stage1 /bin/busybox /stage1-busybox
COPY --from=tools /bin/busybox /tools-busybox
RUN --mount=from=shared,target=/mnt echo "data=$(cat /data.txt) files=$(cat /files-data.txt) mnt=$(cat /mnt/data.txt) ls=$(ls -A /mnt | tr '\\n' ,)" && test -x /stage1-busybox && test -x /tools-busybox && echo checks-ok
`)
  if (!bed.skip) {
    reg = await startTestRegistry()
    await seedBases(reg)
  }
}, 180_000)
afterAll(async () => {
  await reg?.stop()
  await cleanupTmpDirs()
}, 60_000)

describe.skipIf(bed.skip)('--build-context', () => {
  it('a directory, docker-image:// (a registry) and oci-layout:// (tag and digest) in FROM, COPY --from, RUN --mount and over a stage', () => {
    const meta = join(work, 'meta.json')
    const r = cli(['build', '-f', 'ctx/Dockerfile', 'ctx', '--progress', 'plain', '--metadata-file', meta,
      '--build-context', 'shared=shared',
      '--build-context', `busybox=docker-image://${reg.host}/library/busybox:latest`,
      '--build-context', `stage1=oci-layout://${busyboxLayout()}:latest`,
      '--build-context', `tools=oci-layout://${busyboxLayout()}@${layoutDigest()}`])
    expect(r.stderr).not.toMatch(/error/i)
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('data=from-shared files=from-shared mnt=from-shared ls=')
    // The last match: the command line itself, echoed in the progress output, spells `ls=$(…)`.
    const ls = [...r.stderr.matchAll(/ls=([^\n]*)/g)].map((m) => m[1]!).filter((m) => !m.includes('$(')).at(-1)!
    expect(ls).toContain('data.txt,')
    expect(ls).not.toContain('secret.txt')
    expect(r.stderr).toContain('checks-ok')
    // FROM busybox came from the registry the context named, not docker.io.
    const bases = JSON.parse(readFileSync(meta, 'utf8'))['imagesmith.bases'] as { ref: string }[]
    expect(bases.map((b) => b.ref)).toEqual([`${reg.host}/library/busybox:latest`])
  })

  it('a build script reads them too: from() and copy({ from }) by name', () => {
    const s = join(work, 'build.ts')
    writeFileSync(s, `import { image } from ${JSON.stringify(api)}
export default image().from('alpine:3').copy('data.txt', '/data.txt', { from: 'shared' }).run('cat /data.txt; echo; ls /bin/busybox')
`)
    const r = cli(['build', s, '--context', work, '--progress', 'plain',
      '--build-context', 'shared=shared', '--build-context', `alpine:3=oci-layout://${busyboxLayout()}`])
    expect(r.stderr).not.toMatch(/error/i)
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('from-shared')
  })

  it('git and http sources are refused by name; a missing directory and a bad flag fail before the build', () => {
    const build = (...extra: string[]) => cli(['build', '-f', 'ctx/Dockerfile', 'ctx', '--progress', 'plain', ...extra])
    for (const [value, what] of [['https://github.com/example/repo.git', 'a git repository'], ['git@github.com:example/repo.git', 'a git repository'], ['https://example.com/ctx.tar.gz', 'an HTTP URL']]) {
      const f = build('--build-context', `shared=${value}`)
      expect(f.code, value).toBe(1)
      expect(f.stderr, value).toContain(`error [BUILD_CONTEXT_UNSUPPORTED]: build context shared=${value}: ${what} is not supported`)
    }
    const missing = build('--build-context', 'shared=no-such-dir', '--build-context', `busybox=docker-image://${reg.host}/library/busybox`,
      '--build-context', `stage1=oci-layout://${busyboxLayout()}`, '--build-context', `tools=oci-layout://${busyboxLayout()}`)
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('error [CONTEXT_NOT_FOUND]')
    expect(missing.stderr).toContain('no-such-dir')
    const shape = build('--build-context', 'shared')
    expect(shape.code).toBe(2)
    expect(shape.stderr).toContain('error: --build-context shared: NAME=VALUE expected')
  })
})
