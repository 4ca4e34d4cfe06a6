/**
 * The process sandbox of a RUN step, checked from inside the step with the real runtime, against
 * what `docker build` gives a step: Docker's default seccomp profile (an active filter, the syscalls
 * and argument values it refuses fail with its errno, what Debian's tools need still works), Docker's
 * default capability set, the masked and read-only /proc paths, no mount, and private pid, ipc, uts
 * and mount namespaces. `security: 'insecure'` (with the security.insecure entitlement) drops the
 * filter and grants every capability.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fromDockerfile, image, type BuildOptions, type ImageBuilder, type ProgressEvent } from '../../src/index.js'
import { busyboxArchive, cleanupTmpDirs, debianArchive, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'
import { canBuildRootless, grantableCaps, stripRootlessNotes } from '../helpers/rootless-env.js'

const bed = requireTools(['runc', 'perl'], { needsRoot: !canBuildRootless() })
const busybox = () => image().from(`oci-archive:${busyboxArchive()}`)
const debian = () => image().from(`oci-archive:${debianArchive()}`)

/** Docker's default capabilities (CHOWN … AUDIT_WRITE, SETFCAP) as /proc/<pid>/status prints CapEff. */
const DOCKER_CAP_EFF = '00000000a80425fb'

/** Docker's masked paths (moby oci/defaults.go), which runc covers with /dev/null or an empty read-only tmpfs. */
const DOCKER_MASKED = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
]

/** Syscall numbers the probes call by number (asm/unistd.h), per architecture. */
const NR: Record<string, { keyctl: number; clone3: number; personality: number; socket: number; unshare: number }> = {
  x64: { keyctl: 250, clone3: 435, personality: 135, socket: 41, unshare: 272 },
  arm64: { keyctl: 219, clone3: 435, personality: 92, socket: 198, unshare: 97 },
}
const nr = NR[process.arch]

let work: string

beforeAll(async () => {
  work = await tmpDir('ism-sandbox-')
})

afterAll(async () => {
  await cleanupTmpDirs()
})

/** stdout+stderr of the build's RUN steps, always run (noCache). */
async function output(b: ImageBuilder, opts: BuildOptions = {}): Promise<string> {
  const logs: string[] = []
  await b.build({
    cacheDir: join(work, 'cache'),
    context: work,
    noCache: true,
    onProgress: (e: ProgressEvent) => {
      if (e.type === 'log') logs.push(e.data.toString())
    },
    ...opts,
  })
  return logs.join('')
}

/**
 * A perl one-liner printing `name=ok` or `name=<errno>` for each syscall, called by number (perl-base
 * in Debian's minbase has no syscall.ph). The arguments are harmless: keyctl(KEYCTL_GET_KEYRING_ID, 0)
 * and clone3(NULL, 0) fail on any host, but with their own errno (EINVAL/ENOKEY, EFAULT/EINVAL),
 * never EPERM or ENOSYS, which only the filter returns.
 */
function perlProbe(): string {
  const n = nr!
  const calls: [string, string][] = [
    ['keyctl', `${n.keyctl}, 0, 0, 0, 0, 0`],
    ['clone3', `${n.clone3}, 0, 0`],
    // personality(0xffffffff) only queries; READ_IMPLIES_EXEC (0x0400000) is not on moby's list.
    ['personality_query', `${n.personality}, 0xffffffff`],
    ['personality_rie', `${n.personality}, 0x0400000`],
    // AF_VSOCK (40) is the one address family moby refuses; AF_UNIX (1) is allowed.
    ['socket_vsock', `${n.socket}, 40, 1, 0`],
    ['socket_unix', `${n.socket}, 1, 1, 0`],
    // CLONE_NEWUTS (0x04000000): unshare is allowed only with CAP_SYS_ADMIN.
    ['unshare', `${n.unshare}, 0x04000000`],
  ]
  const body = calls.map(([name, args]) => `$r = syscall(${args}); print "${name}=", ($r < 0 ? $!+0 : "ok"), "\\n";`).join(' ')
  return `perl -e '${body}'`
}

function parse(out: string): Record<string, string> {
  return Object.fromEntries(out.split('\n').flatMap((l) => {
    const m = /^([\w/.-]+)=(\S+)$/.exec(l)
    return m ? [[m[1]!, m[2]!]] : []
  }))
}

describe.skipIf(bed.skip)('the default RUN sandbox (busybox)', () => {
  it("has an active seccomp filter and Docker's default capability set", async () => {
    const out = await output(busybox().run('grep -E "^(Seccomp|CapEff|CapPrm|CapBnd):" /proc/self/status'))
    expect(out).toContain('Seccomp:\t2\n')
    expect(out).toContain(`CapEff:\t${DOCKER_CAP_EFF}\n`)
    expect(out).toContain(`CapPrm:\t${DOCKER_CAP_EFF}\n`)
    expect(out).toContain(`CapBnd:\t${DOCKER_CAP_EFF}\n`)
  })

  it('masks /proc/kcore and the rest of Docker\'s masked paths: files are /dev/null (1:3, read empty), directories empty', async () => {
    // Paths the kernel has: a VM kernel without CONFIG_PROC_KCORE has no /proc/kcore to mask (then it
    // must be absent inside too), while /proc/keys and /proc/timer_list exist on any usual kernel.
    const present = DOCKER_MASKED.filter((p) => existsSync(p))
    expect(present.filter((p) => !statSync(p).isDirectory()).length).toBeGreaterThan(0)
    const script = DOCKER_MASKED.map((p) =>
      `if [ -d ${p} ]; then echo "${p}=dir:$(ls -A ${p} | wc -l)"; elif [ -e ${p} ]; then echo "${p}=$(stat -c %t:%T ${p}):$(head -c 16 ${p} | wc -c)"; else echo "${p}=absent"; fi`).join('; ')
    const out = parse(await output(busybox().run(script)))
    for (const p of DOCKER_MASKED) {
      if (!existsSync(p)) expect(out[p], p).toBe('absent')
      else expect(out[p], p).toBe(statSync(p).isDirectory() ? 'dir:0' : '1:3:0')
    }
  })

  it('keeps /proc/sys read-only: a write fails with EROFS and changes nothing', async () => {
    const out = await output(busybox().run('before=$(cat /proc/sys/kernel/hostname); (echo changed > /proc/sys/kernel/hostname) 2>&1; echo "rc=$?"; test "$(cat /proc/sys/kernel/hostname)" = "$before" && echo same=yes'))
    expect(out).toMatch(/Read-only file system/)
    expect(parse(out).rc).not.toBe('0')
    expect(parse(out).same).toBe('yes')
  })

  it('refuses mount -t tmpfs none /mnt (EPERM), and umount of a runtime mount', async () => {
    const out = await output(busybox().run('mkdir -p /mnt; mount -t tmpfs none /mnt 2>&1; echo "mount=$?"; umount /dev/shm 2>&1; echo "umount=$?"; grep -c " /mnt " /proc/self/mountinfo || true'))
    expect(out).toMatch(/Operation not permitted/)
    expect(parse(out).mount).not.toBe('0')
    expect(parse(out).umount).not.toBe('0')
    expect(out.trim().split('\n').at(-1)).toBe('0')
  })

  it('sees only its own processes and runs in private pid, ipc, uts and mount namespaces', async () => {
    const out = await output(busybox().run('for p in /proc/[0-9]*; do echo "proc ${p#/proc/} $(cat $p/comm)"; done; for n in pid ipc uts mnt; do echo "ns $n $(readlink /proc/self/ns/$n)"; done'))
    const procs = out.split('\n').filter((l) => l.startsWith('proc ')).map((l) => l.split(' ').slice(1))
    // The step's shell is PID 1; everything else is its own children (the loop's subshells, cat).
    expect(procs.find(([pid]) => pid === '1')?.[1]).toBe('sh')
    expect(procs.length).toBeLessThan(6)
    expect(procs.map(([, comm]) => comm)).not.toContain('node')
    const hostProcs = readFileSync('/proc/loadavg', 'utf8').split(' ')[3]!.split('/')[1]!
    expect(Number(hostProcs)).toBeGreaterThan(procs.length)
    for (const n of ['pid', 'ipc', 'uts', 'mnt']) {
      const inside = out.split('\n').find((l) => l.startsWith(`ns ${n} `))!.split(' ')[2]
      expect(inside, n).toMatch(new RegExp(`^${n}:\\[\\d+\\]$`))
      expect(inside, n).not.toBe(readlinkSync(`/proc/self/ns/${n}`))
    }
  })
})

describe.skipIf(bed.skip || !nr)('seccomp on the Debian base', () => {
  it("refuses what Docker's profile refuses, with its errno; the host's kernel would not (same probe on the host)", async () => {
    const inside = parse(await output(debian().run(perlProbe())))
    expect(inside).toEqual({
      keyctl: '1', // EPERM: not on the allowlist
      clone3: '38', // ENOSYS, as moby returns it, so that glibc falls back to clone
      personality_query: 'ok',
      personality_rie: '1',
      socket_vsock: '1',
      socket_unix: 'ok',
      unshare: '1',
    })
    // The host (root, no filter) gets past the filter's refusals: any EPERM/ENOSYS above came from it.
    const host = parse(execFileSync('sh', ['-c', perlProbe()], { encoding: 'utf8' }))
    expect(host.keyctl).not.toBe('1')
    expect(host.clone3).not.toBe('38')
    expect(host.personality_rie).toBe('ok')
    expect(host.socket_vsock).not.toBe('1')
  })

  it('apt-get --version and useradd -r app still work under the filter', async () => {
    const out = await output(debian().run('grep "^Seccomp:" /proc/self/status; apt-get --version | head -1; useradd -r app && id -u app >/dev/null && echo useradd=ok'))
    expect(out).toContain('Seccomp:\t2\n')
    expect(out).toMatch(/^apt \d/m)
    expect(out).toContain('useradd=ok\n')
  })
})

describe.skipIf(bed.skip || !nr)("security: 'insecure' with the security.insecure entitlement", () => {
  it('runs without a seccomp filter and with every capability', async () => {
    const allow: BuildOptions = { allow: ['security.insecure'] }
    // Every capability this process can hand on: the kernel's all (cap_last_cap) on a plain host, one
    // fewer where the host itself runs without one (CAP_SYS_RESOURCE in some VMs' init).
    const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!
    const all = (1n << BigInt(Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')) + 1)) - 1n
    expect(BigInt(`0x${bnd}`) & ~all).toBe(0n)
    expect(BigInt(`0x${bnd}`) & BigInt(`0x${DOCKER_CAP_EFF}`)).toBe(BigInt(`0x${DOCKER_CAP_EFF}`))
    const out = await output(debian().run(`grep -E "^(Seccomp|CapEff):" /proc/self/status; ${perlProbe()}`, { security: 'insecure' }), allow)
    expect(out).toContain('Seccomp:\t0\n')
    expect(out).toContain(`CapEff:\t${grantableCaps()}\n`)
    const probe = parse(out)
    expect(probe.keyctl).not.toBe('1')
    expect(probe.clone3).not.toBe('38')
    expect(probe.personality_rie).toBe('ok')
    // The same from a Dockerfile's RUN --security=insecure; its sandboxed neighbour keeps the filter.
    const d = fromDockerfile(`FROM oci-archive:${busyboxArchive()}\nRUN --security=insecure grep "^Seccomp:" /proc/self/status\nRUN grep "^Seccomp:" /proc/self/status\n`)
    expect(stripRootlessNotes(await output(d.target, allow))).toBe('Seccomp:\t0\nSeccomp:\t2\n')
  })
})
