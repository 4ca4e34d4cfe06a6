/**
 * toDockerfile against a real builder: a printed Dockerfile built by buildah 1.28 gives the same
 * filesystem and config as building the builder here, and so does BuildKit in docker 20.10.
 * buildah 1.28 and docker 20.10's built-in frontend predate heredocs, so this
 * builder has no multi-line script ending in a newline (the heredoc spelling is covered by the
 * round trip through this project's importer, following BuildKit's dockerfile_heredoc_test.go).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toDockerfile } from '../../src/index.js'
import { exportedApp } from '../helpers/export-builders.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { layoutConfig, layoutTree } from '../helpers/image-tree.js'
import { requireTools, runTool, startDockerd, type Dockerd } from '../helpers/tools.js'
import { busyboxArchive } from '../helpers/testbed.js'

const bed = requireTools(['buildah', 'umoci', 'skopeo', 'runc'])

describe.skipIf(bed.skip)('toDockerfile: buildah builds the printed Dockerfile to the same image', () => {
  let work: string
  let context: string
  beforeAll(async () => {
    work = await tmpDir('ism-dfexport-')
    context = join(work, 'ctx')
    await mkdir(context)
    await writeFile(join(context, 'a b.txt'), 'spaced\n')
    await writeFile(join(context, 'plain.txt'), 'plain\n')
  })
  afterAll(async () => {
    await runTool('buildah', ['--root', join(work, 'bh'), '--runroot', join(work, 'bhrun'), 'rm', '--all'], { allowFailure: true })
    await runTool('umount', ['-R', join(work, 'bh')], { allowFailure: true })
    await cleanupTmpDirs()
  })

  it('same files (type, mode, owner, content) and config', async () => {
    const app = exportedApp()
    const text = toDockerfile(app)
    await writeFile(join(context, 'Dockerfile'), text)

    const ours = join(work, 'ours.tar')
    await app.build({ context, cacheDir: join(work, 'cache'), output: { type: 'oci', dest: ours }, sourceDateEpoch: 0 })
    await runTool('skopeo', ['copy', `oci-archive:${ours}`, `oci:${join(work, 'ours')}:t`])

    const bh = ['--root', join(work, 'bh'), '--runroot', join(work, 'bhrun'), '--storage-driver', 'vfs']
    await runTool('buildah', [...bh, 'bud', '--runtime', 'runc', '--layers=false', '--format', 'docker', '-f', join(context, 'Dockerfile'), '-t', 'dfexport:t', context], { timeoutMs: 240_000 })
    await runTool('buildah', [...bh, 'push', 'dfexport:t', `oci:${join(work, 'theirs')}:t`])

    const [a, b] = [await layoutTree(join(work, 'ours'), 't', join(work, 'ours-fs')), await layoutTree(join(work, 'theirs'), 't', join(work, 'theirs-fs'))]
    // buildah leaves the mount points of its RUN containers behind (empty /etc/hosts, /etc/resolv.conf, /run/.containerenv, ...).
    const runArtefacts = /^(etc\/(hosts|resolv\.conf|hostname)|run(\/.*)?|proc|sys|dev(\/.*)?)$/
    const strip = (m: Map<string, string>) => [...m].filter(([k]) => !runArtefacts.test(k))
    expect(strip(a)).toEqual(strip(b))
    expect(a.get('srv/my app/a b.txt')).toMatch(/ 640 1000:1000$/)
    expect(a.get('multi')).toBeDefined()

    const fields = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'StopSignal', 'Labels'] as const
    const pick = (c: Record<string, unknown>) => {
      const cfg = c.config as Record<string, unknown>
      const labels = { ...(cfg.Labels as Record<string, string>) }
      delete labels['io.buildah.version']
      return Object.fromEntries(fields.map((f) => [f, f === 'Labels' ? labels : cfg[f]]))
    }
    const ourConfig = pick(layoutConfig(join(work, 'ours'), 't'))
    const theirConfig = pick(layoutConfig(join(work, 'theirs'), 't'))
    // buildah 1.28 (openshift/imagebuilder) wraps a shell-form CMD in /bin/sh -c whatever the SHELL;
    // Docker and BuildKit use the SHELL, as the Dockerfile reference says and as imagesmith does.
    expect(ourConfig.Cmd).toEqual(['/bin/sh', '-eu', '-c', 'echo $GREETING'])
    expect(theirConfig.Cmd).toEqual(['/bin/sh', '-c', 'echo $GREETING'])
    expect({ ...ourConfig, Cmd: null }).toEqual({ ...theirConfig, Cmd: null })
    expect(ourConfig.Env).toContain('LITERAL=$HOME and \\n')
  }, 300_000)
})

const dbed = requireTools(['dockerd', '/usr/bin/docker', 'skopeo', 'umoci', 'runc'])

/** Files and config of the image, as compared above. */
async function compare(work: string, ours: string, theirs: string): Promise<{ ours: Record<string, unknown>; theirs: Record<string, unknown> }> {
  const [a, b] = [await layoutTree(join(work, ours), 't', join(work, `${ours}-fs`)), await layoutTree(join(work, theirs), 't', join(work, `${theirs}-fs`))]
  // BuildKit 0.8 leaves the empty mount points of its RUN containers (/dev, /proc, /sys) in a base that lacks them.
  const mountPoints = /^(proc|sys|dev)$/
  const strip = (m: Map<string, string>) => [...m].filter(([k, v]) => !(mountPoints.test(k) && v.startsWith('d ')))
  expect(strip(a)).toEqual(strip(b))
  const fields = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'StopSignal', 'Labels'] as const
  const pick = (c: Record<string, unknown>) => Object.fromEntries(fields.map((f) => [f, (c.config as Record<string, unknown>)[f]]))
  return { ours: pick(layoutConfig(join(work, ours), 't')), theirs: pick(layoutConfig(join(work, theirs), 't')) }
}

describe.skipIf(dbed.skip)('toDockerfile: BuildKit (docker 20.10) builds the printed Dockerfile to the same image', () => {
  let work: string
  let dockerd: Dockerd | undefined
  beforeAll(async () => {
    work = await tmpDir('ism-dfexport-docker-')
    await mkdir(join(work, 'ctx'))
    await writeFile(join(work, 'ctx', 'a b.txt'), 'spaced\n')
    await writeFile(join(work, 'ctx', 'plain.txt'), 'plain\n')
    dockerd = await startDockerd()
  }, 120_000)
  afterAll(async () => {
    await dockerd?.stop()
    await cleanupTmpDirs()
  })

  it('same files and config (the base loaded into docker under a name, as the local-ref comment says)', async () => {
    const d = dockerd!
    await runTool('skopeo', ['copy', `oci-archive:${busyboxArchive()}`, `docker-archive:${join(work, 'bb.tar')}:ism-busybox:latest`])
    await d.docker(['load', '-i', join(work, 'bb.tar')])
    const text = toDockerfile(exportedApp('ism-busybox:latest'))
    expect(text).not.toContain('# syntax')
    await writeFile(join(work, 'ctx', 'Dockerfile'), text)
    await d.docker(['build', '--network', 'none', '-t', 'dfexport:t', join(work, 'ctx')], { env: { ...process.env, DOCKER_BUILDKIT: '1' }, timeoutMs: 240_000 })
    await d.docker(['save', '-o', join(work, 'theirs.tar'), 'dfexport:t'])
    await runTool('skopeo', ['copy', `docker-archive:${join(work, 'theirs.tar')}`, `oci:${join(work, 'theirs')}:t`])

    await exportedApp().build({ context: join(work, 'ctx'), cacheDir: join(work, 'cache'), output: { type: 'oci', dest: join(work, 'ours.tar') }, sourceDateEpoch: 0 })
    await runTool('skopeo', ['copy', `oci-archive:${join(work, 'ours.tar')}`, `oci:${join(work, 'ours')}:t`])
    const c = await compare(work, 'ours', 'theirs')
    expect(c.ours).toEqual(c.theirs)
    expect(c.ours.Cmd).toEqual(['/bin/sh', '-eu', '-c', 'echo $GREETING'])
  }, 300_000)
})
