/**
 * toDockerfile against a real builder: a printed Dockerfile built by buildah 1.28 gives the same
 * filesystem and config as building the builder here. buildah 1.28 predates heredocs, so this
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
import { requireTools, runTool } from '../helpers/tools.js'

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
