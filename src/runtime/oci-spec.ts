/**
 * The OCI runtime spec (config.json) for one RUN step, shaped like runc's default spec and
 * BuildKit's: Docker's default capabilities and seccomp filter, masked and read-only /proc paths, no cgroup resource
 * limits, no user namespace of its own (a root build runs as root on the host, like BuildKit's runc worker;
 * a rootless one runs the runtime as root of the build's user namespace, like rootless podman).
 */
import { readFileSync } from 'node:fs'
import { dockerDefaultSeccomp } from './seccomp.js'
import { userNamespace } from '../host/user-namespace.js'
import type { OciSeccomp } from './seccomp-types.js'

export interface OciMount {
  readonly destination: string
  readonly type: string
  readonly source: string
  readonly options?: readonly string[]
}

export interface OciSpec {
  readonly ociVersion: string
  readonly process: {
    readonly terminal: false
    readonly user: { readonly uid: number; readonly gid: number; readonly additionalGids?: readonly number[] }
    readonly args: readonly string[]
    readonly env: readonly string[]
    readonly cwd: string
    readonly capabilities: Readonly<Partial<Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', readonly string[]>>>
    readonly rlimits: readonly { readonly type: string; readonly hard: number; readonly soft: number }[]
    readonly noNewPrivileges: boolean
  }
  readonly root: { readonly path: string; readonly readonly: boolean }
  readonly hostname: string
  readonly mounts: readonly OciMount[]
  readonly linux: {
    readonly namespaces: readonly { readonly type: string; readonly path?: string }[]
    readonly maskedPaths: readonly string[]
    readonly readonlyPaths: readonly string[]
    readonly resources?: Record<string, unknown>
    readonly seccomp?: OciSeccomp
  }
}

export interface SpecInput {
  readonly args: readonly string[]
  readonly env: readonly string[]
  readonly cwd: string
  readonly user: { readonly uid: number; readonly gid: number; readonly additionalGids: readonly number[] }
  /** Absolute path of the rootfs (it need not be inside the bundle dir). */
  readonly rootfs: string
  readonly hostname: string
  /**
   * 'host' shares the host's network namespace; 'none' gets a fresh one with only loopback;
   * `{ netns }` joins a namespace made for the step (the default network, see network.ts).
   */
  readonly network: 'host' | 'none' | { readonly netns: string }
  /** Mounts after the standard ones (/etc files, RUN --mount targets), in mount order. */
  readonly mounts: readonly OciMount[]
  /**
   * `RUN --security=insecure` (BuildKit's entitlements.WithInsecureSpec): every capability the kernel
   * has, in every set, no masked or read-only paths, every device allowed by the device cgroup.
   * @default false
   */
  readonly insecure?: boolean
  /** Limits replacing the defaults by name (`nofile` → RLIMIT_NOFILE). @default nofile as high as the host allows */
  readonly ulimits?: readonly { readonly name: string; readonly soft: number; readonly hard: number }[]
  /** Bytes of the /dev/shm tmpfs. @default 64 MiB */
  readonly shmSize?: number
}

/** Docker's and BuildKit's default capability set. */
export const DEFAULT_CAPS: readonly string[] = Object.freeze([
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
])

/** Capability names by number (linux/capability.h), 0 … CAP_CHECKPOINT_RESTORE (40). */
const CAP_NAMES: readonly string[] = Object.freeze([
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT',
  'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE',
  'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ',
  'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
].map((n) => `CAP_${n}`))

let allCaps: readonly string[] | undefined

/**
 * Every capability this process can hand on: its bounding set (/proc/self/status CapBnd), which on a
 * plain host is every capability the kernel has, as BuildKit's insecure mode grants (containerd's
 * WithAllCurrentCapabilities). Asking for more fails in the runtime ("unable to apply caps").
 */
export function allCapabilities(): readonly string[] {
  if (!allCaps) {
    let mask = (1n << BigInt(CAP_NAMES.length)) - 1n
    try {
      const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
      if (hex) mask = BigInt(`0x${hex}`)
    } catch {
      // not Linux: the names known here
    }
    allCaps = Object.freeze(CAP_NAMES.filter((_, i) => (mask >> BigInt(i)) & 1n))
  }
  return allCaps
}

const MASKED = Object.freeze([
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
])
const READONLY = Object.freeze(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'])

function standardMounts(network: SpecInput['network'], shmSize = 65536 * 1024): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    // gid=5 (tty) must exist: a rootless build without subordinate ids maps only root (podman drops it too).
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', ...(userNamespace()?.singleId ? [] : ['gid=5'])] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize}`] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // sysfs cannot be mounted fresh while sharing the host's network namespace: bind it read-only then.
    network !== 'host'
      ? { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] }
      : { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] },
  ]
}

let hardNofile: number | undefined

/** The hard RLIMIT_NOFILE of this process: a container may not ask for more. */
export function hostNofileHard(): number {
  if (hardNofile === undefined) {
    hardNofile = 1024
    try {
      const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
      const hard = line?.trim().split(/\s+/)[4]
      if (hard === 'unlimited') hardNofile = 1 << 20
      else if (hard && /^\d+$/.test(hard)) hardNofile = Number(hard)
    } catch {
      // not Linux: keep the conservative default
    }
  }
  return hardNofile
}

/** The default RLIMIT_NOFILE, then each given limit in its place (a given nofile replaces the default). */
function rlimits(nofile: number, ulimits: NonNullable<SpecInput['ulimits']>): { type: string; hard: number; soft: number }[] {
  const out = new Map<string, { type: string; hard: number; soft: number }>([['RLIMIT_NOFILE', { type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }]])
  for (const u of ulimits) out.set(`RLIMIT_${u.name.toUpperCase()}`, { type: `RLIMIT_${u.name.toUpperCase()}`, hard: u.hard, soft: u.soft })
  return [...out.values()]
}

export function buildSpec(input: SpecInput): OciSpec {
  // Docker's build containers inherit the daemon's 1048576; stay within what this host allows.
  const nofile = Math.min(1 << 20, hostNofileHard())
  const namespaces: { type: string; path?: string }[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }]
  if (input.network === 'none') namespaces.push({ type: 'network' })
  else if (input.network !== 'host') namespaces.push({ type: 'network', path: input.network.netns })
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: {
        uid: input.user.uid,
        gid: input.user.gid,
        ...(input.user.additionalGids.length > 0 ? { additionalGids: [...input.user.additionalGids] } : {}),
      },
      args: [...input.args],
      env: [...input.env],
      cwd: input.cwd,
      capabilities: input.insecure
        ? { bounding: allCapabilities(), effective: allCapabilities(), permitted: allCapabilities(), inheritable: allCapabilities(), ambient: allCapabilities() }
        : { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS },
      rlimits: rlimits(nofile, input.ulimits ?? []),
      noNewPrivileges: false,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts: [...standardMounts(input.network, input.shmSize), ...input.mounts],
    linux: {
      namespaces,
      maskedPaths: input.insecure ? [] : MASKED,
      readonlyPaths: input.insecure ? [] : READONLY,
      // The only cgroup setting a spec has: allow-all devices, the no-op state, which runc's rootless cgroup
      // manager accepts in a rootless build's namespace too (there are no limits it would have to drop).
      ...(input.insecure ? { resources: { devices: [{ allow: true, access: 'rwm' }] } } : {}),
      // Docker's default profile resolved against the step's capabilities; insecure runs unfiltered
      // (BuildKit's WithInsecureSpec drops linux.seccomp, as `docker run --privileged` does).
      ...(input.insecure ? {} : { seccomp: dockerDefaultSeccomp(DEFAULT_CAPS) }),
    },
  }
}
