/**
 * Build-time rules for what a Dockerfile may ask of the host, as BuildKit enforces them with the real
 * runtime: `RUN --security=insecure` and `--network=host` are entitlements the build must allow
 * (`allow` / `--allow`); `RUN --mount=type=ssh` reaches an SSH agent the build forwards (`ssh` /
 * `--ssh`), a required one fails without it, an optional one is left out. The agent is a real
 * `ssh-agent` holding a fresh key; `ssh-add` (with its libraries) is copied into the busybox image
 * to ask it for its keys from inside the step.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCodes, fromDockerfile, image, ImagesmithError, type BuildOptions, type ImageBuilder, type ProgressEvent } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, shortTmpDir, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'
import { canBuildRootless, grantableCaps } from '../helpers/rootless-env.js'

const bed = requireTools(['runc', 'ssh-agent', 'ssh-add', 'ssh-keygen'], { needsRoot: !canBuildRootless() })
const repo = resolve(__dirname, '../..')
const bin = join(repo, 'bin', 'imagesmith.js')
const base = () => `oci-archive:${busyboxArchive()}`

let work: string
let ctx: string
let cache: string
let agentSock: string
let agentPid: number | undefined
let fingerprint: string

beforeAll(async () => {
  work = await tmpDir('ism-entitle-')
  ctx = join(work, 'ctx')
  cache = join(work, 'cache')
  // ssh-add and the libraries it loads, at their own paths, for a COPY into busybox.
  const files = ['/usr/bin/ssh-add', ...execFileSync('ldd', ['/usr/bin/ssh-add'], { encoding: 'utf8' }).split('\n').flatMap((l) => /(\/\S+) \(0x/.exec(l)?.[1] ?? [])]
  for (const f of files) {
    mkdirSync(join(ctx, 'root', dirname(f)), { recursive: true })
    copyFileSync(realpathSync(f), join(ctx, 'root', f))
  }
  const sockDir = await shortTmpDir('ism-agent-')
  agentSock = join(sockDir, 'agent.sock')
  const out = execFileSync('ssh-agent', ['-s', '-a', agentSock], { encoding: 'utf8' })
  agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)?.[1])
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'imagesmith-test', '-f', join(work, 'key')])
  execFileSync('ssh-add', ['-q', join(work, 'key')], { env: { ...process.env, SSH_AUTH_SOCK: agentSock } })
  fingerprint = execFileSync('ssh-keygen', ['-l', '-f', join(work, 'key.pub')], { encoding: 'utf8' }).split(' ')[1]!
})

afterAll(async () => {
  if (agentPid) process.kill(agentPid)
  await cleanupTmpDirs()
})

async function build(b: ImageBuilder, opts: BuildOptions & { readonly driver?: undefined } = {}): Promise<{ out: string; layers: number }> {
  const logs: string[] = []
  const r = await b.build({
    cacheDir: cache,
    context: ctx,
    onProgress: (e: ProgressEvent) => {
      if (e.type === 'log') logs.push(e.data.toString())
    },
    ...opts,
  })
  return { out: logs.join(''), layers: r.layers.length }
}

async function failure(p: Promise<unknown>): Promise<ImagesmithError> {
  const e = await p.then(() => undefined, (err: unknown) => err)
  expect(e, 'the build should have failed').toBeInstanceOf(ImagesmithError)
  return e as ImagesmithError
}

/**
 * CapEff with every capability: all this process may hand on (its bounding set). On a plain host that
 * is every capability of the kernel (cap_last_cap); inside a container without one, one bit fewer.
 */
function allCapsHex(): string {
  const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!
  const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'))
  expect(BigInt(`0x${bnd}`) & ~((1n << BigInt(last + 1)) - 1n)).toBe(0n)
  return grantableCaps()
}

// Masked and read-only /proc paths are mounts over /proc/…: the sandbox has them, insecure mode none.
const caps = 'grep -E "^Cap(Eff|Bnd)" /proc/self/status; echo "proc-overmounts=$(grep -cE \' /proc/[a-z_]+(/[a-z_-]+)? \' /proc/self/mountinfo)"'

describe.skipIf(bed.skip)('RUN --security=insecure: the security.insecure entitlement', () => {
  it('is refused without allow (ENTITLEMENT_REQUIRED naming the entitlement and the step), from a Dockerfile too', async () => {
    const e = await failure(build(image().from(base()).run(caps, { security: 'insecure' })))
    expect(e.code).toBe(ErrorCodes.ENTITLEMENT_REQUIRED)
    expect(e.details).toMatchObject({ entitlement: 'security.insecure' })
    expect(String(e.details.step)).toContain('RUN --security=insecure grep')
    const d = fromDockerfile(`FROM ${base()}\nRUN --security=insecure true\n`)
    expect((await failure(build(d.target))).code).toBe(ErrorCodes.ENTITLEMENT_REQUIRED)
    // allowing the other entitlement is not enough
    expect((await failure(build(d.target, { allow: ['network.host'] }))).details).toMatchObject({ entitlement: 'security.insecure' })
  })

  it('with allow, runs with every capability and nothing masked; the sandbox keeps Docker\'s default set', async () => {
    const insecure = await build(image().from(base()).run(caps, { security: 'insecure' }), { allow: ['security.insecure'], noCache: true })
    expect(insecure.out).toContain(`CapEff:\t${allCapsHex()}`)
    expect(insecure.out).toContain(`CapBnd:\t${allCapsHex()}`)
    expect(insecure.out).toContain('proc-overmounts=0\n')
    const sandbox = await build(image().from(base()).run(caps), { allow: ['security.insecure'], noCache: true })
    expect(sandbox.out).toContain('CapEff:\t00000000a80425fb')
    expect(sandbox.out).toMatch(/proc-overmounts=[1-9]/)
    // A cached insecure step still needs the entitlement (BuildKit validates before solving).
    const b = image().from(base()).run('echo cached > /c', { security: 'insecure' })
    await build(b, { allow: ['security.insecure'] })
    expect((await failure(build(b))).code).toBe(ErrorCodes.ENTITLEMENT_REQUIRED)
  })
})

describe.skipIf(bed.skip)('RUN --network=host: the network.host entitlement', () => {
  const ifaces = 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " | sort'
  const host = () => readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0]!.trim()).sort()

  it('a step with network host is refused without allow; with it the step is on the host network even in a network-none build', async () => {
    const b = image().from(base()).run(ifaces, { network: 'host' })
    const e = await failure(build(b, { network: 'none' }))
    expect(e.code).toBe(ErrorCodes.ENTITLEMENT_REQUIRED)
    expect(e.details).toMatchObject({ entitlement: 'network.host' })
    const { out } = await build(b, { network: 'none', allow: ['network.host'], noCache: true })
    expect(out.trim().split('\n')).toEqual(host())
    const d = fromDockerfile(`FROM ${base()}\nRUN --network=host true\n`)
    expect((await failure(build(d.target))).code).toBe(ErrorCodes.ENTITLEMENT_REQUIRED)
  })
})

describe.skipIf(bed.skip)('RUN --mount=type=ssh', () => {
  const withSshAdd = () => image().from(base()).copy('root/', '/')

  it('required without a forwarded socket: SSH_NOT_FORWARDED naming the id', async () => {
    const e = await failure(build(withSshAdd().run('true', { mounts: [{ type: 'ssh', id: 'gh', required: true }] })))
    expect(e.code).toBe(ErrorCodes.SSH_NOT_FORWARDED)
    expect(e.details).toMatchObject({ id: 'gh' })
    // A forwarded socket of another id does not count.
    const again = await failure(build(withSshAdd().run('true', { mounts: [{ type: 'ssh', id: 'gh', required: true }] }), { ssh: { default: agentSock } }))
    expect(again.code).toBe(ErrorCodes.SSH_NOT_FORWARDED)
  })

  it('optional without a socket: the step runs without it, SSH_AUTH_SOCK still set (BuildKit)', async () => {
    const { out } = await build(withSshAdd().run('echo "sock=$SSH_AUTH_SOCK"; test -e /run/buildkit/ssh_agent.0 && echo present || echo absent', { mounts: [{ type: 'ssh' }] }), { noCache: true })
    expect(out).toContain('sock=/run/buildkit/ssh_agent.0')
    expect(out).toContain('absent')
  })

  it('forwarded: the agent answers at the target through SSH_AUTH_SOCK, with the mount\'s owner and mode; nothing of it is in the layer', async () => {
    const step = 'test -S "$SSH_AUTH_SOCK" && echo "sock=$SSH_AUTH_SOCK"; stat -c "%a %u %g" /s/agent; ssh-add -l; ls -A /s > /listing'
    const b = withSshAdd().run(step, { mounts: [{ type: 'ssh', target: '/s/agent', mode: 0o640, uid: 7, gid: 8, required: true }] })
    const { out } = await build(b, { ssh: { default: agentSock }, noCache: true })
    expect(out).toContain('sock=/s/agent')
    expect(out).toContain('640 7 8')
    expect(out).toContain(fingerprint)
    // The next step (no ssh mount) sees no socket and no stub of the mount point in the image: the
    // directory made for it stays, empty, as buildah and docker 20.10 leave the parents of mount points.
    const after = await build(b.run('test -e /s/agent && echo leaked || echo clean; ls -A /s | wc -l'), { ssh: { default: agentSock } })
    expect(after.out.replace(/ +/g, '')).toBe('clean\n0\n')
  })

  it('from a Dockerfile through the CLI: --ssh default=SOCKET and --allow, as docker build takes them', () => {
    writeFileSync(join(ctx, 'ssh.Dockerfile'), [
      `FROM ${base()}`,
      'COPY root/ /',
      'RUN --mount=type=ssh,required=true --security=insecure ssh-add -l && grep CapEff /proc/self/status',
      '',
    ].join('\n'))
    const run = (...flags: string[]) =>
      spawnSync(process.execPath, [bin, 'build', '-f', join(ctx, 'ssh.Dockerfile'), '--progress', 'plain', '--no-cache', ...flags, ctx], {
        encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: cache, SSH_AUTH_SOCK: agentSock }, timeout: 120_000,
      })
    const ok = run('--ssh', 'default', '--allow', 'security.insecure')
    expect(ok.status, ok.stderr).toBe(0)
    expect(ok.stderr + ok.stdout).toContain(fingerprint)
    expect(ok.stderr + ok.stdout).toContain(allCapsHex())
    const noSsh = run('--allow', 'security.insecure')
    expect(noSsh.status).toBe(1)
    expect(noSsh.stderr).toContain('error [SSH_NOT_FORWARDED]')
    const noAllow = run('--ssh', `default=${agentSock}`)
    expect(noAllow.status).toBe(1)
    expect(noAllow.stderr).toContain('error [ENTITLEMENT_REQUIRED]')
  })
})
