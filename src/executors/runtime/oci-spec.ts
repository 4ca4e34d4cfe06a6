/**
 * The OCI runtime spec (config.json) for one RUN step, shaped like runc's default spec and
 * BuildKit's: Docker's default capabilities, masked and read-only /proc paths, no cgroup resource
 * limits, no user namespace (the build runs as root on the host, like BuildKit's runc worker).
 */
import { readFileSync } from 'node:fs'

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
    readonly capabilities: Readonly<Record<'bounding' | 'effective' | 'permitted', readonly string[]>>
    readonly rlimits: readonly { readonly type: string; readonly hard: number; readonly soft: number }[]
    readonly noNewPrivileges: boolean
  }
  readonly root: { readonly path: string; readonly readonly: boolean }
  readonly hostname: string
  readonly mounts: readonly OciMount[]
  readonly linux: {
    readonly namespaces: readonly { readonly type: string }[]
    readonly maskedPaths: readonly string[]
    readonly readonlyPaths: readonly string[]
    readonly resources?: Record<string, unknown>
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
  /** 'host' shares the host's network namespace; 'none' gets a fresh one with only loopback. */
  readonly network: 'host' | 'none'
  /** Mounts after the standard ones (/etc files, RUN --mount targets), in mount order. */
  readonly mounts: readonly OciMount[]
}

/** Docker's and BuildKit's default capability set. */
export const DEFAULT_CAPS: readonly string[] = Object.freeze([
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
])

const MASKED = Object.freeze([
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
])
const READONLY = Object.freeze(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'])

/** Mount points the runtime itself provides: never part of a layer. */
export const RUNTIME_MOUNT_POINTS: readonly string[] = Object.freeze(['/proc', '/dev', '/sys'])

function standardMounts(network: 'host' | 'none'): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // sysfs cannot be mounted fresh while sharing the host's network namespace: bind it read-only then.
    network === 'none'
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

export function buildSpec(input: SpecInput): OciSpec {
  // Docker's build containers inherit the daemon's 1048576; stay within what this host allows.
  const nofile = Math.min(1 << 20, hostNofileHard())
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }]
  if (input.network === 'none') namespaces.push({ type: 'network' })
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
      capabilities: { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }],
      noNewPrivileges: false,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts: [...standardMounts(input.network), ...input.mounts],
    linux: {
      namespaces,
      maskedPaths: MASKED,
      readonlyPaths: READONLY,
    },
  }
}
