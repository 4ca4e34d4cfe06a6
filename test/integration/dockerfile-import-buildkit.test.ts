/**
 * Dockerfile import against BuildKit itself: the same Dockerfile built by `DOCKER_BUILDKIT=1 docker
 * build` (docker 20.10's BuildKit, started by the test, `--network none`) and by imagesmith gives the
 * same filesystem and config. 20.10's built-in frontend predates heredocs, --exclude, --parents and
 * --start-interval; those follow BuildKit's own tests (dockerfile-import.test.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fromDockerfile, image } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { layoutConfig, layoutTree } from '../helpers/image-tree.js'
import { requireTools, runTool, startDockerd, type Dockerd } from '../helpers/tools.js'

const bed = requireTools(['dockerd', '/usr/bin/docker', 'skopeo', 'umoci', 'runc'])

const DOCKERFILE = `ARG BASE
FROM $BASE AS base
ENV HOME=/home/app APP="my app"
WORKDIR $HOME
ARG UID=1000
COPY --chown=$UID:$UID --chmod=640 a.txt ./
COPY src/ /opt/src/
RUN echo "$APP $UID" > info.txt
LABEL home="$HOME" app=\${APP} unset=\${NOPE:-fallback}
EXPOSE 8080 \${UID}/udp
ONBUILD RUN echo "trigger $APP" > /trig

FROM base
ARG UID
ENV APP=\${APP}-final PATH=/opt/bin:$PATH
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /tok && echo "$UID" > /uid
VOLUME ["$HOME/data"]
STOPSIGNAL SIGINT
USER $UID
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
ENTRYPOINT ["sh", "-c"]
CMD ["echo $APP"]
`

describe.skipIf(bed.skip)('Dockerfile import: the same image as BuildKit (docker 20.10)', () => {
  let work: string
  let dockerd: Dockerd | undefined
  beforeAll(async () => {
    work = await tmpDir('ism-dfbk-')
  })
  afterAll(async () => {
    await dockerd?.stop()
    await cleanupTmpDirs()
  })

  it('same files (type, mode, owner, content), config and history', async () => {
    const ctx = join(work, 'ctx')
    await mkdir(join(ctx, 'src'), { recursive: true })
    await writeFile(join(ctx, 'a.txt'), 'alpha\n')
    await writeFile(join(ctx, 'src', 'main.c'), 'int main(){}\n')
    await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE)
    await writeFile(join(work, 'tok'), 'sekrit\n')
    // One base for both: busybox as an archive docker can load (OCI + manifest.json).
    const base = join(work, 'base.tar')
    await image().from(`oci-archive:${busyboxArchive()}`).build({ cacheDir: join(work, 'cache'), context: ctx, tags: ['bk-base:1'], output: { type: 'oci', dest: base }, sourceDateEpoch: 0 })

    const ours = join(work, 'ours.tar')
    const d = fromDockerfile(join(ctx, 'Dockerfile'), { buildArgs: { BASE: `oci-archive:${base}`, UID: '1234' } })
    await d.build({ context: ctx, cacheDir: join(work, 'cache'), output: { type: 'oci', dest: ours }, secrets: { tok: { src: join(work, 'tok') } }, sourceDateEpoch: 0, network: 'none' })
    await runTool('skopeo', ['copy', `oci-archive:${ours}`, `oci:${join(work, 'ours')}:t`])

    dockerd = await startDockerd()
    await dockerd.docker(['load', '-i', base])
    const env = { ...process.env, DOCKER_BUILDKIT: '1', DOCKER_CONFIG: join(dockerd.dir, 'cfg') }
    await dockerd.docker(['build', '--network', 'none', '--build-arg', 'BASE=bk-base:1', '--build-arg', 'UID=1234', '--secret', `id=tok,src=${join(work, 'tok')}`, '-t', 'bk-out:1', ctx], { env, timeoutMs: 240_000 })
    await dockerd.docker(['save', '-o', join(work, 'theirs.tar'), 'bk-out:1'])
    await runTool('skopeo', ['copy', `docker-archive:${join(work, 'theirs.tar')}`, `oci:${join(work, 'theirs')}:t`])

    const [a, b] = [await layoutTree(join(work, 'ours'), 't', join(work, 'ours-fs')), await layoutTree(join(work, 'theirs'), 't', join(work, 'theirs-fs'))]
    // The directories made for the RUN containers' mounts (dev, proc, sys, run/secrets) stay, as
    // BuildKit 0.8 leaves them (BuildKit 0.12 and later remove them); the mount points themselves go.
    expect([...a]).toEqual([...b])
    for (const stub of ['dev', 'proc', 'sys', 'run/secrets']) expect(a.get(stub)).toMatch(/^d /)
    expect(a.get('home/app/a.txt')).toMatch(/ 640 1234:1234$/)
    expect(a.get('trig')).toBeDefined()

    // skopeo's conversion to OCI drops Docker-only fields (Healthcheck, OnBuild): those are read from docker itself.
    const fields = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'StopSignal', 'Labels'] as const
    const pick = (c: Record<string, unknown>) => Object.fromEntries(fields.map((f) => [f, (c.config as Record<string, unknown>)[f] ?? null]))
    const [ca, cb] = [layoutConfig(join(work, 'ours'), 't'), layoutConfig(join(work, 'theirs'), 't')]
    expect(pick(ca)).toEqual(pick(cb))
    const docker = JSON.parse((await dockerd.docker(['image', 'inspect', '--format', '{{json .Config}}', 'bk-out:1'])).stdout) as Record<string, unknown>
    const our = ca.config as Record<string, unknown>
    expect(our.Healthcheck).toEqual(docker.Healthcheck)
    expect(our.OnBuild ?? null).toEqual(docker.OnBuild ?? null)
    // History: the same steps with the same created_by text, except where BuildKit 0.8 (docker 20.10)
    // differs from the current BuildKit imagesmith follows: it commits a layer for a WORKDIR that already
    // exists, its COPY text leaves out --chown/--chmod, its HealthConfig has no StartInterval (4 durations
    // printed, not 5), and its ARG lines show the declaration (`ARG UID=1000`, `ARG UID`) where current
    // BuildKit's dispatchArg, like imagesmith, shows the value in effect (`ARG UID=1234`).
    const hist = (c: Record<string, unknown>, ours = false) =>
      (c.history as { created_by?: string; empty_layer?: boolean }[]).map((h) => {
        let text = (h.created_by ?? '').replace(/^(COPY) --chown=\S+ --chmod=\S+/, '$1').replace(/^ARG .*/, 'ARG')
        if (ours) text = text.replace(/^(HEALTHCHECK .*) "0s" '/, "$1 '")
        return `${h.empty_layer || text.startsWith('WORKDIR') ? '-' : 'L'} ${text}`
      })
    expect(hist(ca, true)).toEqual(hist(cb))
    expect(hist(ca)).toContain('L RUN |1 UID=1234 /bin/sh -c echo "$APP $UID" > info.txt # buildkit')
    expect(hist(ca)).toContain('L RUN /bin/sh -c echo "trigger $APP" > /trig # buildkit')
  }, 600_000)
})
