import { describe, expect, it } from 'vitest'
import { planStep } from '../../src/ops/run.js'
import { buildSpec, hostNofileHard } from '../../src/runtime/oci-spec.js'
import { which } from '../../src/runtime/detect.js'
import type { RunSpec } from '../../src/graph/nodes/run-node.js'
import type { ContainerConfig } from '../../src/oci/types.js'
import type { ImageState } from '../../src/solver/types.js'

const state = (config: ContainerConfig = {}, args: ImageState['args'] = []): ImageState => ({
  config: { architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: [] } },
  layers: [],
  args,
  cmdSet: false,
})
const spec = (command: string | string[], over: Partial<RunSpec> = {}): RunSpec => ({
  command: typeof command === 'string' ? [command] : command,
  shellForm: typeof command === 'string',
  network: 'default',
  mounts: [],
  ...over,
})

describe('planStep', () => {
  it('shell form goes through SHELL (default /bin/sh -c), exec form is the argv', () => {
    expect(planStep(spec('echo hi'), state(), { network: 'default' }).args).toEqual(['/bin/sh', '-c', 'echo hi'])
    expect(planStep(spec('echo hi'), state({ Shell: ['/bin/bash', '-eo', 'pipefail', '-c'] }), { network: 'default' }).args).toEqual(['/bin/bash', '-eo', 'pipefail', '-c', 'echo hi'])
    expect(planStep(spec(['/bin/echo', 'a b']), state(), { network: 'default' }).args).toEqual(['/bin/echo', 'a b'])
  })

  it('history as BuildKit writes it', () => {
    const s = state({}, [{ name: 'V', value: '1.2' }, { name: 'NOVALUE' }])
    expect(planStep(spec('make  all'), s, { network: 'default' }).createdBy).toBe('RUN |1 V=1.2 /bin/sh -c make  all # buildkit')
    expect(planStep(spec(['/bin/echo', 'a b']), state(), { network: 'default' }).createdBy).toBe('RUN /bin/echo a b # buildkit')
    const mounted = spec('true', { mounts: [{ type: 'cache', target: '/c', id: 'c', sharing: 'shared', readonly: false }], network: 'none' })
    expect(planStep(mounted, state(), { network: 'default' }).createdBy).toBe('RUN /bin/sh -c true # buildkit')
  })

  it('env: config Env, ARGs with values that ENV does not set, default PATH', () => {
    const env = planStep(spec('true'), state({ Env: ['A=env', 'PATH=/x'] }, [{ name: 'A', value: 'arg' }, { name: 'B', value: 'b' }, { name: 'C' }]), { network: 'default' }).env
    expect(env).toEqual(['A=env', 'PATH=/x', 'B=b'])
    expect(planStep(spec('true'), state(), { network: 'default' }).env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'])
  })

  it('network: a private namespace by default, none per step or per build; an explicit host wins over the build', () => {
    const net = (n: RunSpec['network'], ctx: 'default' | 'none') => planStep(spec('true', { network: n }), state(), { network: ctx }).network
    expect([net('default', 'default'), net('none', 'default'), net('default', 'none'), net('host', 'none')]).toEqual(['private', 'none', 'none', 'host'])
  })

  it('working dir and user come from the config', () => {
    const p = planStep(spec('true'), state({ WorkingDir: 'rel/dir', User: 'app' }), { network: 'default' })
    expect([p.cwd, p.user]).toEqual(['/rel/dir', 'app'])
  })
})

describe('buildSpec', () => {
  const base = {
    args: ['/bin/true'], env: ['PATH=/bin'], cwd: '/', user: { uid: 1, gid: 2, additionalGids: [3] }, rootfs: '/r', hostname: 'h', mounts: [],
  }
  it('adds a network namespace only for network none', () => {
    expect(buildSpec({ ...base, network: 'none' }).linux.namespaces.map((n) => n.type)).toContain('network')
    expect(buildSpec({ ...base, network: 'host' }).linux.namespaces.map((n) => n.type)).not.toContain('network')
  })
  it('keeps rlimits within the host hard limit and sets no cgroup resources', () => {
    const s = buildSpec({ ...base, network: 'none' })
    const nofile = s.process.rlimits.find((r) => r.type === 'RLIMIT_NOFILE')!
    expect(nofile.hard).toBeLessThanOrEqual(hostNofileHard())
    expect(nofile.soft).toBeLessThanOrEqual(nofile.hard)
    expect(s.linux.resources).toBeUndefined()
    expect(s.process.user).toEqual({ uid: 1, gid: 2, additionalGids: [3] })
    expect(s.mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys'])
    expect(s.linux.maskedPaths).toContain('/proc/kcore')
  })
})

describe('which', () => {
  it('finds programs on a PATH and paths as given', () => {
    expect(which('sh', '/nonexistent:/bin:/usr/bin')).toMatch(/\/sh$/)
    expect(which('definitely-not-a-program-xyz', '/bin:/usr/bin')).toBeUndefined()
    expect(which('/bin/sh')).toBe('/bin/sh')
  })
})
