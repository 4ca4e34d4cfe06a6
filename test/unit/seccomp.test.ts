/**
 * The seccomp filter of RUN: Docker's default profile resolved into the OCI section as moby's
 * setupSeccomp does it, and kept in sync with the profile the system's container tools ship
 * (/usr/share/containers/seccomp.json from containers-common, when installed).
 */
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { buildSpec, DEFAULT_CAPS } from '../../src/runtime/oci-spec.js'
import { dockerDefaultSeccomp, hostArch, resolveSeccomp } from '../../src/runtime/seccomp.js'
import { DOCKER_DEFAULT_PROFILE } from '../../src/runtime/seccomp-profile.js'
import type { OciSeccomp, SeccompProfile } from '../../src/runtime/seccomp-types.js'

type Verdict = 'refused' | 'args' | 'allowed'
const RANK: Record<Verdict, number> = { refused: 0, args: 1, allowed: 2 }

/** Per syscall: allowed outright, allowed only for some argument values, or refused (an errno rule or the default action). */
function verdicts(s: OciSeccomp): Map<string, Verdict> {
  const out = new Map<string, Verdict>()
  for (const r of s.syscalls) {
    if (r.action !== 'SCMP_ACT_ALLOW') continue
    const v: Verdict = r.args && r.args.length > 0 ? 'args' : 'allowed'
    for (const n of r.names) if (RANK[v] > RANK[out.get(n) ?? 'refused']) out.set(n, v)
  }
  return out
}
const verdict = (m: Map<string, Verdict>, n: string): Verdict => m.get(n) ?? 'refused'

function rulesFor(s: OciSeccomp, name: string) {
  return s.syscalls.filter((r) => r.names.includes(name))
}

const KERNEL = '6.1.0-18-amd64'

describe("Docker's default profile resolved for a RUN step", () => {
  const amd64 = resolveSeccomp(DOCKER_DEFAULT_PROFILE, { caps: DEFAULT_CAPS, arch: 'amd64', kernel: KERNEL })
  const v = verdicts(amd64)

  it('refuses with EPERM by default, for x86_64 and its x86/x32 sub-architectures (aarch64 and arm on arm64)', () => {
    expect(amd64.defaultAction).toBe('SCMP_ACT_ERRNO')
    expect(amd64.defaultErrnoRet).toBe(1)
    expect(amd64.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'])
    expect(resolveSeccomp(DOCKER_DEFAULT_PROFILE, { caps: DEFAULT_CAPS, arch: 'arm64', kernel: KERNEL }).architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'])
    // No rule keeps its profile-only fields.
    for (const r of amd64.syscalls) expect(Object.keys(r).filter((k) => !['names', 'action', 'errnoRet', 'args'].includes(k))).toEqual([])
  })

  it("refuses what Docker refuses without CAP_SYS_ADMIN and the other capabilities RUN does not have", () => {
    for (const n of ['keyctl', 'add_key', 'request_key', 'mount', 'umount2', 'unshare', 'setns', 'bpf', 'perf_event_open', 'kexec_load', 'init_module', 'reboot', 'swapon', 'pivot_root', 'open_by_handle_at', 'settimeofday', 'acct', 'syslog', 'userfaultfd', 'io_uring_setup']) {
      expect(verdict(v, n), n).toBe('refused')
    }
    // CAP_SYS_CHROOT is in Docker's default set: chroot is allowed, as `docker build` allows it.
    expect(verdict(v, 'chroot')).toBe('allowed')
    for (const n of ['read', 'openat', 'execve', 'ptrace', 'arch_prctl', 'modify_ldt', 'fchmodat2']) expect(verdict(v, n), n).toBe('allowed')
    // ptrace & co. need kernel 4.8 (seccomp could be bypassed through ptrace before it).
    expect(verdict(verdicts(resolveSeccomp(DOCKER_DEFAULT_PROFILE, { caps: DEFAULT_CAPS, arch: 'amd64', kernel: '4.4.0' })), 'ptrace')).toBe('refused')
    // Arch-specific calls of other architectures are not listed.
    expect(verdict(v, 'arm_fadvise64_64')).toBe('refused')
    expect(verdict(v, 's390_runtime_instr')).toBe('refused')
  })

  it('keeps the argument filters: clone without namespace flags, clone3 ENOSYS, personality values, socket without AF_VSOCK', () => {
    expect(rulesFor(amd64, 'clone')).toEqual([{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }] }])
    // The mask is every CLONE_NEW* flag (NS, CGROUP, UTS, IPC, USER, PID, NET): clone may not make namespaces.
    expect(0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000).toBe(2114060288)
    expect(rulesFor(amd64, 'clone3')).toEqual([{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }])
    expect(rulesFor(amd64, 'personality').map((r) => r.args![0]!.value)).toEqual([0, 8, 131072, 131080, 4294967295])
    expect(rulesFor(amd64, 'socket').map((r) => r.args)).toEqual([
      [{ index: 0, value: 38, op: 'SCMP_CMP_LT' }],
      [{ index: 0, value: 39, op: 'SCMP_CMP_EQ' }],
      [{ index: 0, value: 40, op: 'SCMP_CMP_GT' }],
    ])
  })

  it('resolves includes/excludes against the capability set, as moby does for --cap-add', () => {
    const admin = resolveSeccomp(DOCKER_DEFAULT_PROFILE, { caps: [...DEFAULT_CAPS, 'CAP_SYS_ADMIN'], arch: 'amd64', kernel: KERNEL })
    const va = verdicts(admin)
    expect(verdict(va, 'mount')).toBe('allowed')
    expect(verdict(va, 'clone')).toBe('allowed')
    expect(rulesFor(admin, 'clone3').map((r) => r.action)).toEqual(['SCMP_ACT_ALLOW'])
    // s390 has its own clone rule (arguments swapped); it never applies to amd64.
    expect(rulesFor(amd64, 'clone')).toHaveLength(1)
    expect(rulesFor(resolveSeccomp(DOCKER_DEFAULT_PROFILE, { caps: DEFAULT_CAPS, arch: 's390x', kernel: KERNEL }), 'clone')[0]!.args![0]!.index).toBe(1)
  })

  it('is the linux.seccomp of every sandboxed RUN spec and absent from an insecure one', () => {
    const input = { args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, rootfs: '/r', hostname: 'h', network: 'none' as const, mounts: [] }
    expect(buildSpec(input).linux.seccomp).toEqual(dockerDefaultSeccomp(DEFAULT_CAPS))
    if (hostArch() === 'amd64') expect(buildSpec(input).linux.seccomp?.architectures[0]).toBe('SCMP_ARCH_X86_64')
    if (hostArch() === 'arm64') expect(buildSpec(input).linux.seccomp?.architectures[0]).toBe('SCMP_ARCH_AARCH64')
    expect(buildSpec({ ...input, insecure: true }).linux.seccomp).toBeUndefined()
  })
})

const SHIPPED = '/usr/share/containers/seccomp.json'

/**
 * containers-common's profile derives from Docker's but is its own: it allows what rootless podman
 * needs (mount, unshare, keyctl, …) and returns ENOSYS for syscalls it does not name. Ours must not
 * allow anything it refuses, with two precise exceptions:
 *  - syscalls the shipped file never names: it refuses them only through its default action because
 *    it predates them (a different version, e.g. fchmodat2, mseal, listmount in moby's newer profile);
 *  - CONTAINERS_COMMON_ONLY: syscalls containers-common refuses in its own explicit block but moby's
 *    profile allows, so `docker build` allows them too and so do we.
 * Anything else allowed by ours and refused by the shipped file fails this test: either our data lost a
 * refusal, or the system's tools gained one that Docker's profile should be checked for.
 */
const CONTAINERS_COMMON_ONLY = ['io_pgetevents', 'vmsplice']

describe.skipIf(!existsSync(SHIPPED))(`in sync with the profile the container tools ship (${SHIPPED})`, () => {
  it('is not more permissive than the shipped profile, except for syscalls newer than it and its own extra refusals', () => {
    const shipped = JSON.parse(readFileSync(SHIPPED, 'utf8')) as SeccompProfile
    const target = { caps: DEFAULT_CAPS, arch: hostArch() }
    const ours = verdicts(resolveSeccomp(DOCKER_DEFAULT_PROFILE, target))
    const theirs = verdicts(resolveSeccomp(shipped, target))
    const named = new Set(shipped.syscalls.flatMap((r) => r.names))
    const all = [...new Set([...DOCKER_DEFAULT_PROFILE.syscalls.flatMap((r) => r.names), ...named])].sort()
    const looser = all.filter((n) => RANK[verdict(ours, n)] > RANK[verdict(theirs, n)])
    const stricter = all.filter((n) => RANK[verdict(ours, n)] < RANK[verdict(theirs, n)])
    const newer = looser.filter((n) => !named.has(n))
    const policy = looser.filter((n) => named.has(n))
    console.info(`seccomp vs ${SHIPPED}:\n  ours allows, shipped does not name (newer): ${newer.join(' ')}\n  ours allows, shipped refuses by its own rule: ${policy.join(' ')}\n  ours refuses or filters, shipped allows: ${stricter.join(' ')}`)

    expect(policy.filter((n) => !CONTAINERS_COMMON_ONLY.includes(n))).toEqual([])
    // The exceptions are explicit, unconditional refusals in the shipped file, not an artefact of resolving it.
    for (const n of policy) {
      expect(shipped.syscalls.some((r) => r.names.includes(n) && r.action === 'SCMP_ACT_ERRNO' && !(r.args && r.args.length > 0)), n).toBe(true)
    }
    // The comparison has teeth: the shipped file refuses plenty we refuse too, and names most of ours.
    expect(all.filter((n) => verdict(ours, n) === 'refused' && verdict(theirs, n) === 'refused').length).toBeGreaterThan(20)
    expect(newer.length).toBeLessThan(ours.size / 10)
    // Docker's own refusals that the shipped (podman) profile relaxes stay refused here.
    expect(stricter).toEqual(expect.arrayContaining(['keyctl', 'mount', 'unshare', 'clone', 'clone3']))
  })
})
