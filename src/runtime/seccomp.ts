/**
 * The seccomp filter of a RUN step: Docker's default profile (seccomp-profile.ts) resolved the way
 * moby's setupSeccomp does it (profiles/seccomp/seccomp_linux.go): the host's architecture and its
 * sub-architectures from the arch map, and only the rules whose `includes`/`excludes` conditions
 * hold for the container's bounding capabilities, the host architecture and the running kernel.
 * So with Docker's default capabilities `mount`, `unshare`, `bpf`, `keyctl`… fail with EPERM, `clone`
 * may not create namespaces and `clone3` fails with ENOSYS (C libraries then fall back to `clone`).
 */
import { endianness, release } from 'node:os'
import { DOCKER_DEFAULT_PROFILE } from './seccomp-profile.js'
import type { OciSeccomp, SeccompFilter, SeccompProfile } from './seccomp-types.js'

export interface SeccompTarget {
  /** Bounding capabilities of the container (CAP_… names). */
  readonly caps: readonly string[]
  /** Native architecture as moby spells it (amd64, arm64, …). @default the host's */
  readonly arch?: string
  /** Kernel release ("6.1.0-18-amd64"). @default the running kernel's */
  readonly kernel?: string
}

/** moby's native architecture name → libseccomp's (seccomp_linux.go nativeToSeccomp). */
const SECCOMP_ARCH: Readonly<Record<string, string>> = Object.freeze({
  x86: 'SCMP_ARCH_X86', amd64: 'SCMP_ARCH_X86_64', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64',
  loongarch64: 'SCMP_ARCH_LOONGARCH64', mips64: 'SCMP_ARCH_MIPS64', mipsel64: 'SCMP_ARCH_MIPSEL64', ppc: 'SCMP_ARCH_PPC',
  ppc64: 'SCMP_ARCH_PPC64', ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64', s390: 'SCMP_ARCH_S390',
  s390x: 'SCMP_ARCH_S390X',
})

/** This host's architecture in moby's spelling (Node's process.arch → Go's GOARCH → moby's native name). */
export function hostArch(): string {
  switch (process.arch) {
    case 'x64': return 'amd64'
    case 'ia32': return 'x86'
    case 'loong64': return 'loongarch64'
    case 'mips64el' as string: return 'mipsel64'
    case 'ppc64': return endianness() === 'LE' ? 'ppc64le' : 'ppc64'
    default: return process.arch
  }
}

function kernelAtLeast(kernel: string, min: string): boolean {
  const [a = 0, b = 0] = kernel.split(/[.-]/).map((n) => Number.parseInt(n, 10) || 0)
  const [x = 0, y = 0] = min.split('.').map((n) => Number.parseInt(n, 10) || 0)
  return a > x || (a === x && b >= y)
}

/** moby's rule: excluded if any `excludes` condition holds, included only if every `includes` one does. */
function applies(includes: SeccompFilter | undefined, excludes: SeccompFilter | undefined, arch: string, caps: ReadonlySet<string>, kernel: string): boolean {
  if (excludes) {
    if (excludes.arches?.includes(arch)) return false
    if (excludes.caps?.some((c) => caps.has(c))) return false
    if (excludes.minKernel && kernelAtLeast(kernel, excludes.minKernel)) return false
  }
  if (includes) {
    if (includes.arches && includes.arches.length > 0 && !includes.arches.includes(arch)) return false
    if (includes.caps && !includes.caps.every((c) => caps.has(c))) return false
    if (includes.minKernel && !kernelAtLeast(kernel, includes.minKernel)) return false
  }
  return true
}

/** The OCI `linux.seccomp` section of `profile` for a container with `target.caps` on `target.arch`. */
export function resolveSeccomp(profile: SeccompProfile, target: SeccompTarget): OciSeccomp {
  const arch = target.arch ?? hostArch()
  const kernel = target.kernel ?? release()
  const caps = new Set(target.caps)
  const native = SECCOMP_ARCH[arch]
  const entry = profile.archMap.find((a) => a.architecture === native)
  const syscalls = profile.syscalls
    .filter((r) => applies(r.includes, r.excludes, arch, caps, kernel))
    .map((r) => ({
      names: r.names,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args && r.args.length > 0 ? { args: r.args } : {}),
    }))
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures: entry ? [entry.architecture, ...entry.subArchitectures] : [],
    syscalls,
  }
}

const cache = new Map<string, OciSeccomp>()

/** Docker's default filter for a container with these bounding capabilities on this host (memoised: one per capability set). */
export function dockerDefaultSeccomp(caps: readonly string[]): OciSeccomp {
  const key = [...caps].sort().join(',')
  let hit = cache.get(key)
  if (!hit) {
    hit = resolveSeccomp(DOCKER_DEFAULT_PROFILE, { caps })
    cache.set(key, hit)
  }
  return hit
}
