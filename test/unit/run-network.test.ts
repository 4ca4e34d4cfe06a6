import { describe, expect, it } from 'vitest'
import { ImagesmithError } from '../../src/errors.js'
import { planStep } from '../../src/ops/run.js'
import { networkTools } from '../../src/runtime/network.js'
import { privateResolvConf } from '../../src/ops/run-mounts.js'
import { buildSpec } from '../../src/runtime/oci-spec.js'
import type { RunSpec } from '../../src/graph/nodes/run-node.js'
import type { ImageState } from '../../src/solver/types.js'

const state: ImageState = {
  config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
  layers: [],
  args: [],
  cmdSet: false,
}
const spec = (network: RunSpec['network']): RunSpec => ({ command: ['true'], shellForm: true, network, mounts: [] })

describe('RUN network plan', () => {
  it("the default network is a private namespace, never the host's", () => {
    expect(planStep(spec('default'), state, { network: 'default' }).network).toBe('private')
    expect(planStep(spec('default'), state, { network: 'none' }).network).toBe('none')
    expect(planStep(spec('none'), state, { network: 'default' }).network).toBe('none')
    expect(planStep(spec('host'), state, { network: 'none' }).network).toBe('host')
  })

  it('the OCI spec joins the prepared namespace by path and mounts a fresh sysfs', () => {
    const s = buildSpec({ args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, rootfs: '/r', hostname: 'h', network: { netns: '/proc/42/ns/net' }, mounts: [] })
    expect(s.linux.namespaces).toContainEqual({ type: 'network', path: '/proc/42/ns/net' })
    expect(s.mounts.find((m) => m.destination === '/sys')?.type).toBe('sysfs')
    const host = buildSpec({ args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, rootfs: '/r', hostname: 'h', network: 'host', mounts: [] })
    expect(host.linux.namespaces.some((n) => n.type === 'network')).toBe(false)
  })
})

describe('resolv.conf on the private network', () => {
  it("replaces systemd-resolved's 127.0.0.53 with slirp4netns's DNS forwarder, keeping search and options", () => {
    const host = '# managed by systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.lan\n'
    expect(privateResolvConf(host)).toBe('# managed by systemd-resolved\noptions edns0 trust-ad\nsearch example.lan\nnameserver 10.0.2.3\n')
  })

  it('keeps reachable nameservers and drops loopback and IPv6 ones', () => {
    expect(privateResolvConf('nameserver 127.0.1.1\nnameserver 192.0.2.53\nnameserver ::1\nnameserver fe80::1%eth0\n')).toBe('nameserver 192.0.2.53\n')
    expect(privateResolvConf('nameserver 10.255.255.53\n')).toBe('nameserver 10.255.255.53\n')
  })

  it('an empty host resolv.conf gets the forwarder', () => {
    expect(privateResolvConf('')).toBe('nameserver 10.0.2.3\n')
  })
})

describe('network tools', () => {
  it('a host without slirp4netns gets NETWORK_TOOL_NOT_FOUND naming the Debian package', () => {
    let err: unknown
    try {
      networkTools('/nonexistent')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ImagesmithError)
    expect(err).toMatchObject({ code: 'NETWORK_TOOL_NOT_FOUND', details: { tool: 'slirp4netns', package: 'slirp4netns' } })
    expect((err as Error).message).toContain('apt-get install slirp4netns')
  })

  it('finds the tools on this host', () => {
    expect(networkTools().slirp4netns).toMatch(/slirp4netns$/)
  })
})
