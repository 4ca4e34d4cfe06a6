/**
 * Dockerfile import end to end: builds FROM the offline busybox base, compared with buildah 1.28
 * (`buildah bud`) where buildah has the feature, and checked against BuildKit's documented
 * semantics (frontend/dockerfile/dockerfile_test.go, dockerfile_heredoc_test.go) where buildah 1.28
 * predates it (heredocs, `<Dockerfile>.dockerignore`). Also: `$VAR` expanded at build time against
 * the base image's ENV, ONBUILD triggers of a base image for Dockerfiles and `from()`, and
 * `imagesmith build -f` with directory, tarball and standard-input contexts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fromDockerfile, image } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { layoutConfig, layoutTree } from '../helpers/image-tree.js'
import { requireTools, runTool } from '../helpers/tools.js'

const bed = requireTools(['buildah', 'umoci', 'skopeo', 'runc', 'tar'])
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')

let work: string
let context: string
let cache: string

/** Buildah leaves the mount points of its RUN containers behind (empty /etc/hosts, /etc/resolv.conf, /run/.containerenv, …). */
const runArtefacts = /^(etc\/(hosts|resolv\.conf|hostname)|run(\/.*)?|proc|sys|dev(\/.*)?)$/
const strip = (m: Map<string, string>) => [...m].filter(([k]) => !runArtefacts.test(k))
const FIELDS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'StopSignal', 'Labels', 'OnBuild'] as const
const pick = (c: Record<string, unknown>) => {
  const cfg = c.config as Record<string, unknown>
  const labels = { ...(cfg.Labels as Record<string, string>) }
  delete labels['io.buildah.version']
  return Object.fromEntries(FIELDS.map((f) => [f, f === 'Labels' ? labels : (cfg[f] ?? null)]))
}

async function ours(dockerfile: string, tag: string, opts: { buildArgs?: Record<string, string>; target?: string } = {}): Promise<string> {
  const path = join(context, `${tag}.Dockerfile`)
  await writeFile(path, dockerfile)
  const d = fromDockerfile(path, { contextDir: context, ...opts })
  const tar = join(work, `${tag}.tar`)
  await d.build({ cacheDir: cache, output: { type: 'oci', dest: tar }, sourceDateEpoch: 0, network: 'none' })
  await runTool('skopeo', ['copy', `oci-archive:${tar}`, `oci:${join(work, `ours-${tag}`)}:t`])
  return join(work, `ours-${tag}`)
}

async function buildah(dockerfile: string, tag: string, args: string[] = []): Promise<string> {
  const path = join(context, `${tag}.bh.Dockerfile`)
  await writeFile(path, dockerfile)
  const bh = ['--root', join(work, 'bh'), '--runroot', join(work, 'bhrun'), '--storage-driver', 'vfs']
  await runTool('buildah', [...bh, 'bud', '--runtime', 'runc', '--network', 'none', '--layers=false', '--format', 'docker', ...args, '-f', path, '-t', `dfimport-${tag}:t`, context], { timeoutMs: 240_000 })
  await runTool('buildah', [...bh, 'push', `dfimport-${tag}:t`, `oci:${join(work, `theirs-${tag}`)}:t`])
  return join(work, `theirs-${tag}`)
}

const tree = (layout: string, name: string) => layoutTree(layout, 't', join(work, `${name}-fs`))

beforeAll(async () => {
  work = await tmpDir('ism-dfimport-')
  context = join(work, 'ctx')
  cache = join(work, 'cache')
  await mkdir(join(context, 'src', 'lib'), { recursive: true })
  await writeFile(join(context, 'a.txt'), 'alpha\n')
  await writeFile(join(context, 'b.md'), 'beta\n')
  await writeFile(join(context, 'src', 'main.c'), 'int main(){}\n')
  await writeFile(join(context, 'src', 'lib', 'x.h'), '#define X\n')
  await writeFile(join(context, 'src', 'notes.md'), 'notes\n')
})

afterAll(async () => {
  await runTool('buildah', ['--root', join(work, 'bh'), '--runroot', join(work, 'bhrun'), 'rm', '--all'], { allowFailure: true })
  await runTool('umount', ['-R', join(work, 'bh')], { allowFailure: true })
  await cleanupTmpDirs()
})

describe.skipIf(bed.skip)('Dockerfile import: the same image as buildah bud', () => {
  it('ARG/ENV scoping and expansion, multi-stage COPY --from, --chown/--chmod, ONBUILD of a stage, exec and shell forms', async () => {
    const text = `ARG BASE=oci-archive:${busyboxArchive()}
ARG GLOBAL_ONLY=g
FROM $BASE AS base
ENV HOME=/home/app APP="my app" EMPTY=
WORKDIR $HOME
ARG UID=1000
ARG MODE=640
COPY --chown=$UID:$UID --chmod=$MODE a.txt ./
COPY src/ /opt/src/
RUN echo "$APP $UID [$GLOBAL_ONLY]" > info.txt && mkdir -p /data && chown $UID /data
LABEL org.example.home="$HOME" app=\${APP} uid=\${UID:-none} unset=\${NOPE:-fallback}
EXPOSE 8080 \${UID}/udp
ONBUILD RUN echo "trigger saw $APP" > /trig

FROM base AS build
RUN echo built > /built

FROM base
ARG UID
ARG GLOBAL_ONLY
ENV APP=\${APP}-final PATH=/opt/bin:$PATH
COPY --from=build /built /opt/
RUN echo "$GLOBAL_ONLY $UID" > /args.txt
VOLUME ["$HOME/data"]
STOPSIGNAL SIGINT
USER $UID
ENTRYPOINT ["sh", "-c"]
CMD ["echo $APP"]
`
    const a = await ours(text, 'main', { buildArgs: { UID: '1234' } })
    const b = await buildah(text, 'main', ['--build-arg', 'UID=1234'])
    const [ta, tb] = [await tree(a, 'ours-main'), await tree(b, 'theirs-main')]
    expect(strip(ta)).toEqual(strip(tb))
    expect(ta.get('home/app/a.txt')).toMatch(/ 640 1234:1234$/)
    expect(readFileSync(join(work, 'ours-main-fs', 'home/app/info.txt'), 'utf8')).toBe('my app 1234 []\n')
    expect(readFileSync(join(work, 'ours-main-fs', 'args.txt'), 'utf8')).toBe('g 1234\n')
    expect(readFileSync(join(work, 'ours-main-fs', 'trig'), 'utf8')).toBe('trigger saw my app\n')
    const [ca, cb] = [pick(layoutConfig(a, 't')), pick(layoutConfig(b, 't'))]
    // buildah moves a re-set variable to the end of Env; BuildKit (dispatch's addEnv) sets it in place, as imagesmith does.
    expect({ ...ca, Env: [...(ca.Env as string[])].sort() }).toEqual({ ...cb, Env: [...(cb.Env as string[])].sort() })
    expect(ca.Env).toEqual(['PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/home/app', 'APP=my app-final', 'EMPTY='])
    expect(ca).toMatchObject({ WorkingDir: '/home/app', User: '1234', OnBuild: null, Volumes: { '/home/app/data': {} } })
    expect(ca.Labels).toEqual({ 'org.example.home': '/home/app', app: 'my app', uid: '1234', unset: 'fallback' })
    expect(ca.Env).toContain('APP=my app-final')
  }, 600_000)
})

describe.skipIf(bed.skip)('Dockerfile import: features newer than buildah 1.28, as BuildKit specifies them', () => {
  it('heredocs (RUN script, RUN with several heredocs, COPY with and without expansion), COPY --exclude, <Dockerfile>.dockerignore', async () => {
    // dockerfile_heredoc_test.go (testCopyHeredoc, testRunBasicHeredoc, testRunFakeHeredoc, testHeredocVarSubstitution),
    // dockerfile_test.go (testDockerfileIgnoreFile: `<name>.dockerignore` beside the Dockerfile wins), testCopyExclude.
    await writeFile(join(context, '.dockerignore'), 'a.txt\n')
    await writeFile(join(context, 'heredoc.Dockerfile.dockerignore'), 'b.md\n')
    const text = `FROM oci-archive:${busyboxArchive()}
ENV NAME=world
ARG WHO=you
RUN <<EOF
echo "script $NAME" > /script.txt
echo second line >> /script.txt
EOF
RUN cat <<A > /a.txt && cat <<'B' > /b.txt
a $NAME
A
b $NAME
B
COPY <<greeting.txt <<'raw.txt' /etc/
hello $NAME "$WHO"
greeting.txt
raw $NAME
raw.txt
COPY --exclude=*.md src/ /src/
COPY a.txt b.md* /ctx/
ADD <<EOT /added.txt
added $NAME
EOT
RUN <<EOF
#!/bin/sh
echo "shebang $0" > /shebang.txt
EOF
ENV CACHE=/cache/dir
RUN --mount=type=cache,target=$CACHE,id=c-$NAME echo x > $CACHE/f && ls $CACHE > /cache-ls.txt && mount | grep -c " $CACHE " > /mounted.txt
`
    const layout = await ours(text, 'heredoc')
    const t = await tree(layout, 'ours-heredoc')
    const fs = join(work, 'ours-heredoc-fs')
    expect(readFileSync(join(fs, 'script.txt'), 'utf8')).toBe('script world\nsecond line\n')
    expect(readFileSync(join(fs, 'a.txt'), 'utf8')).toBe('a world\n')
    expect(readFileSync(join(fs, 'b.txt'), 'utf8')).toBe('b $NAME\n')
    expect(readFileSync(join(fs, 'etc/greeting.txt'), 'utf8')).toBe('hello world "you"\n')
    expect(readFileSync(join(fs, 'etc/raw.txt'), 'utf8')).toBe('raw $NAME\n')
    expect(readFileSync(join(fs, 'added.txt'), 'utf8')).toBe('added world\n')
    // BuildKit's dispatchRun: a #! heredoc script is run as a 0755 file mounted at /dev/pipes/.
    expect(readFileSync(join(fs, 'shebang.txt'), 'utf8')).toBe('shebang /dev/pipes/EOF\n')
    expect(t.has('dev/pipes')).toBe(false)
    // --mount paths are expanded against the stage's env at build time (ENV CACHE), as BuildKit does.
    expect(readFileSync(join(fs, 'cache-ls.txt'), 'utf8')).toBe('f\n')
    expect(readFileSync(join(fs, 'mounted.txt'), 'utf8')).toBe('1\n')
    expect(t.get('etc/greeting.txt')).toMatch(/ 644 0:0$/)
    expect(readdirSync(join(fs, 'src')).sort()).toEqual(['lib', 'main.c'])
    // The Dockerfile's own ignore file replaced the context's: a.txt is in, b.md is out.
    expect(readdirSync(join(fs, 'ctx')).sort()).toEqual(['a.txt'])
    const history = (layoutConfig(layout, 't').history as { created_by?: string }[]).map((h) => h.created_by)
    expect(history).toContain('COPY <<greeting.txt <<raw.txt /etc/ # buildkit')
  }, 300_000)

  it('HEALTHCHECK --start-interval is kept in the config', async () => {
    // dockerfile_test.go testHealthcheckStartInterval (Docker 25 config field StartInterval).
    const d = fromDockerfile(`FROM scratch\nHEALTHCHECK --interval=10s --start-interval=1s --start-period=5s CMD ["true"]\n`)
    const r = await d.build({ cacheDir: cache, context })
    expect(r.config.config.Healthcheck).toEqual({ Test: ['CMD', 'true'], Interval: 10e9, StartPeriod: 5e9, StartInterval: 1e9 })
  }, 120_000)
})

describe.skipIf(bed.skip)('ONBUILD triggers of a base image and build-time $VAR expansion against its ENV', () => {
  let baseTar: string
  beforeAll(async () => {
    baseTar = join(work, 'onbuild-base.tar')
    await writeFile(join(context, '.dockerignore'), '')
    await image()
      .from(`oci-archive:${busyboxArchive()}`)
      .env('HOME', '/home/base')
      .onBuild('RUN echo hi > /x')
      .onBuild('COPY a.txt $HOME/')
      .build({ cacheDir: cache, context, output: { type: 'oci', dest: baseTar }, sourceDateEpoch: 0 })
  }, 120_000)

  it('a Dockerfile FROM the base runs its triggers at FROM; WORKDIR $HOME uses the base ENV', async () => {
    const layout = await ours(`FROM oci-archive:${baseTar}\nWORKDIR $HOME/sub\nRUN pwd > /pwd && cat /x >> /pwd\n`, 'onbuild')
    const fs = join(work, 'ours-onbuild-fs')
    await tree(layout, 'ours-onbuild')
    expect(readFileSync(join(fs, 'pwd'), 'utf8')).toBe('/home/base/sub\nhi\n')
    expect(readFileSync(join(fs, 'home/base/a.txt'), 'utf8')).toBe('alpha\n')
    const config = layoutConfig(layout, 't') as { config: Record<string, unknown>; history: { created_by?: string }[] }
    expect(config.config.WorkingDir).toBe('/home/base/sub')
    // Docker runs the triggers and does not hand them on.
    expect(config.config.OnBuild ?? null).toBeNull()
    expect(config.history.map((h) => h.created_by)).toContain('RUN /bin/sh -c echo hi > /x # buildkit')
  }, 300_000)

  it('from() runs them too', async () => {
    const r = await image().from(`oci-archive:${baseTar}`).run('cat /x > /y').build({ cacheDir: cache, context, sourceDateEpoch: 0 })
    const history = (r.config.history ?? []).map((h) => h.created_by)
    const trig = history.indexOf('RUN /bin/sh -c echo hi > /x # buildkit')
    expect(trig).toBeGreaterThan(0)
    expect(history.indexOf('RUN /bin/sh -c cat /x > /y # buildkit')).toBeGreaterThan(trig)
    expect(r.config.config.OnBuild).toBeUndefined()
  }, 300_000)
})

describe.skipIf(bed.skip)('imagesmith build -f', () => {
  const cli = (args: string[], input?: Buffer | string) => {
    const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, input, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: cache }, timeout: 240_000 })
    return { code: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const text = `FROM oci-archive:${busyboxArchive()} AS base
ARG MSG=default
COPY a.txt /a.txt
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /tok && echo "$MSG" > /msg
FROM base AS other
RUN echo other > /other
FROM base
CMD ["cat", "/msg"]
`

  it('directory, tarball (path and stdin) and stdin Dockerfile give the same image; --build-arg, --target, --secret, -t, -o', async () => {
    await writeFile(join(context, '.dockerignore'), '')
    await writeFile(join(work, 'Dockerfile.cli'), text)
    await writeFile(join(work, 'tok'), 'sekrit\n')
    const common = ['--build-arg', 'MSG=hello', '--secret', `id=tok,src=${join(work, 'tok')}`, '-t', 'dfcli:1', '--progress', 'quiet']
    const dir = cli(['build', '-f', join(work, 'Dockerfile.cli'), ...common, '-o', `type=oci,dest=${join(work, 'cli.tar')}`, context])
    expect(dir.stderr).toBe('')
    expect(dir.code).toBe(0)
    const digest = dir.stdout.trim()
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/)
    const stdinDf = cli(['build', '-f', '-', ...common, context], text)
    expect(stdinDf.stdout.trim()).toBe(digest)

    // A tarball context (gzip), by path and on stdin; -f then names a file inside it.
    await writeFile(join(context, 'Dockerfile'), text)
    await runTool('tar', ['-czf', join(work, 'ctx.tgz'), '-C', context, '.'])
    expect(cli(['build', ...common, join(work, 'ctx.tgz')]).stdout.trim()).toBe(digest)
    expect(cli(['build', '-f', 'Dockerfile', ...common, '-'], readFileSync(join(work, 'ctx.tgz'))).stdout.trim()).toBe(digest)
    // The unpacked copies are gone.
    expect(readdirSync(join(cache, 'tmp')).filter((n) => n.startsWith('context'))).toEqual([])

    const other = cli(['build', '-f', join(work, 'Dockerfile.cli'), '--target', 'other', ...common, context])
    expect(other.code).toBe(0)
    expect(other.stdout.trim()).not.toBe(digest)
    expect(cli(['build', '-f', join(work, 'Dockerfile.cli'), '--target', 'nope', context]).code).toBe(2)
    const missing = cli(['build', '-f', '-', context], 'FROM scratch\nCOPY --from=nope /a /b\n')
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('error [UNDEFINED_STAGE]: line 2:1')

    await runTool('skopeo', ['copy', `oci-archive:${join(work, 'cli.tar')}`, `oci:${join(work, 'cli-layout')}:t`])
    await tree(join(work, 'cli-layout'), 'cli')
    expect(readFileSync(join(work, 'cli-fs', 'tok'), 'utf8')).toBe('sekrit\n')
    expect(readFileSync(join(work, 'cli-fs', 'msg'), 'utf8')).toBe('hello\n')
    expect(existsSync(join(work, 'cli-fs', 'other'))).toBe(false)
  }, 600_000)

  it('a context tarball with a member outside the context is refused', async () => {
    await mkdir(join(work, 'evil'), { recursive: true })
    await writeFile(join(work, 'evil', 'Dockerfile'), 'FROM scratch\n')
    await runTool('tar', ['-cf', join(work, 'evil.tar'), '-C', join(work, 'evil'), 'Dockerfile', '--transform', 's,^,../,', '-P'])
    const r = cli(['build', join(work, 'evil.tar')])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('member outside the context')

    // A symlink out of the context, then a file through it: GNU tar refuses to write through it.
    const evil = join(work, 'evil2')
    await mkdir(join(evil, 'b'), { recursive: true })
    await mkdir(join(work, 'outside'), { recursive: true })
    await writeFile(join(evil, 'Dockerfile'), 'FROM scratch\n')
    await writeFile(join(evil, 'b', 'pwned'), 'x')
    await runTool('ln', ['-s', join(work, 'outside'), join(evil, 'a')])
    await runTool('tar', ['-cf', join(work, 'evil2.tar'), '-C', evil, 'Dockerfile', 'a'])
    await runTool('tar', ['-rf', join(work, 'evil2.tar'), '-C', evil, '--transform', 's,^b/,a/,', 'b/pwned'])
    const r2 = cli(['build', join(work, 'evil2.tar')])
    expect(r2.code).toBe(1)
    expect(r2.stderr).toContain('CONTEXT_UNREADABLE')
    expect(readdirSync(join(work, 'outside'))).toEqual([])
    expect(readdirSync(join(cache, 'tmp')).filter((n) => n.startsWith('context'))).toEqual([])
  })
})

describe.skipIf(bed.skip)('COPY --parents, as BuildKit specifies it (buildah 1.28 predates it)', () => {
  it('dockerfile_parents_test.go: testCopyParents and the pivot cases of testCopyRelativeParents', async () => {
    const ctx = join(work, 'parents-ctx')
    await mkdir(join(ctx, 'foo1', 'foo2'), { recursive: true, mode: 0o700 })
    await runTool('chmod', ['700', join(ctx, 'foo1'), join(ctx, 'foo1', 'foo2')])
    await writeFile(join(ctx, 'foo1', 'foo2', 'bar'), 'testing')
    await writeFile(join(ctx, 'foo1', 'foo2', 'baz'), 'testing2')
    const text = `FROM oci-archive:${busyboxArchive()} AS base
WORKDIR /test
RUN mkdir -p a/b/c/d/e a/b2/c/d/e && touch a/b/c/d/foo a/b/c/d/e/bay a/b2/c/d/e/bar

FROM scratch
COPY --parents foo1/foo2/bar /
WORKDIR /test
COPY --parents foo1/foo2/ba* .
COPY --from=base --parents /test/a/b/./c/d /middle/
COPY --from=base --parents /test/a/b/c/d/. /end/
COPY --from=base --parents ./test/a/b/c/d /start/
COPY --from=base --parents /test/a/./b/./c /double/
COPY --from=base --parents /test/a/./*/c /wildcard/
`
    const d = fromDockerfile(text, { contextDir: ctx })
    const tar = join(work, 'parents.tar')
    await d.build({ cacheDir: cache, output: { type: 'oci', dest: tar }, sourceDateEpoch: 0, network: 'none' })
    await runTool('skopeo', ['copy', `oci-archive:${tar}`, `oci:${join(work, 'parents')}:t`])
    const t = await tree(join(work, 'parents'), 'parents')
    const fs = join(work, 'parents-fs')
    expect(readFileSync(join(fs, 'foo1/foo2/bar'), 'utf8')).toBe('testing')
    expect(readFileSync(join(fs, 'test/foo1/foo2/bar'), 'utf8')).toBe('testing')
    expect(readFileSync(join(fs, 'test/foo1/foo2/baz'), 'utf8')).toBe('testing2')
    // Parent directories keep their own modes.
    expect(t.get('foo1')).toMatch(/^d 700 0:0$/)
    expect(t.get('middle/c/d/e')).toMatch(/^d /)
    expect(t.get('middle/c/d/foo')).toMatch(/^f /)
    expect(t.has('middle/a')).toBe(false)
    expect(t.has('middle/e')).toBe(false)
    expect(t.get('end/test/a/b/c/d/foo')).toMatch(/^f /)
    expect(t.get('start/test/a/b/c/d/e')).toMatch(/^d /)
    expect(t.get('double/b/c/d/foo')).toMatch(/^f /)
    expect(t.get('wildcard/b/c/d/e')).toMatch(/^d /)
    expect(t.get('wildcard/b2/c/d/e/bar')).toMatch(/^f /)
  }, 300_000)
})

describe.skipIf(bed.skip || !existsSync('/usr/lib/git-core/git-daemon'))('ADD of a git repository (git daemon on loopback)', () => {
  let daemon: ChildProcess | undefined
  afterAll(() => {
    daemon?.kill('SIGKILL')
  })

  it('#ref and #ref:subdir are fetched, .git left out unless --keep-git-dir; the commit keys the cache', async () => {
    const repos = join(work, 'git')
    const src = join(work, 'git-work')
    await mkdir(join(src, 'sub'), { recursive: true })
    const git = (args: string[], cwd = src) => runTool('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd })
    await git(['init', '-q', '-b', 'main'])
    await writeFile(join(src, 'a.txt'), 'v1\n')
    await writeFile(join(src, 'sub', 'x.txt'), 'sub\n')
    await git(['add', '.'])
    await git(['commit', '-q', '-m', 'one'])
    await git(['tag', 'v1'])
    await writeFile(join(src, 'a.txt'), 'v2\n')
    await git(['commit', '-q', '-am', 'two'])
    await mkdir(repos, { recursive: true })
    await runTool('git', ['clone', '-q', '--bare', src, join(repos, 'repo.git')])
    const port = await new Promise<number>((ok) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port
        s.close(() => ok(p))
      })
    })
    daemon = spawn('/usr/lib/git-core/git-daemon', ['--reuseaddr', '--export-all', `--base-path=${repos}`, `--port=${port}`, '--listen=127.0.0.1', repos], { stdio: 'ignore' })
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((ok) => connect(port, '127.0.0.1').once('connect', function (this: Socket) { this.destroy(); ok(true) }).once('error', () => ok(false)))
      if (up) break
      await new Promise((r) => setTimeout(r, 50))
    }
    const url = `git://127.0.0.1:${port}/repo.git`
    const text = `FROM scratch\nADD ${url}#v1 /src\nADD ${url}#main:sub /sub/\nADD --keep-git-dir=true ${url} /withgit\n`
    const d = fromDockerfile(text)
    const tar = join(work, 'git.tar')
    const r = await d.build({ cacheDir: cache, context, output: { type: 'oci', dest: tar }, sourceDateEpoch: 0 })
    await runTool('skopeo', ['copy', `oci-archive:${tar}`, `oci:${join(work, 'git-layout')}:t`])
    const t = await tree(join(work, 'git-layout'), 'git')
    const fs = join(work, 'git-fs')
    expect(readFileSync(join(fs, 'src/a.txt'), 'utf8')).toBe('v1\n')
    expect(readFileSync(join(fs, 'src/sub/x.txt'), 'utf8')).toBe('sub\n')
    expect(t.has('src/.git')).toBe(false)
    expect(readdirSync(join(fs, 'sub'))).toEqual(['x.txt'])
    expect(readFileSync(join(fs, 'withgit/a.txt'), 'utf8')).toBe('v2\n')
    expect(t.get('withgit/.git')).toMatch(/^d /)
    // Built again: the same commits, so the layers come from the cache.
    const again = await d.build({ cacheDir: cache, context, sourceDateEpoch: 0 })
    expect(again.cacheHits).toBe(3)
    expect(again.layers.slice(0, 2)).toEqual(r.layers.slice(0, 2))
  }, 300_000)
})
