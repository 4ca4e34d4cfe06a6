/**
 * Paths of the provisioned test bed (made by scripts/provision.sh) and temp-dir helpers.
 *
 * The bases live outside the work tree, in `$IMAGESMITH_TESTBED` or
 * `~/.cache/imagesmith-testbed`. A base counts as ready only when its `<name>.stamp`
 * exists: provision.sh writes it last, after the artefacts were renamed into place.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'

/** Tag of both bases in their OCI layouts and archives (`org.opencontainers.image.ref.name`). */
export const BASE_TAG = 'latest'

/** Root of the test-bed cache. */
export function testbedDir(): string {
  const fromEnv = process.env['IMAGESMITH_TESTBED']
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.cache', 'imagesmith-testbed')
}

type BaseName = 'busybox' | 'debian' | 'busybox-arm64'

function basePath(base: BaseName, entry: string): string {
  const dir = testbedDir()
  const path = join(dir, entry)
  const stamp = join(dir, `${base}.stamp`)
  if (!existsSync(stamp) || !existsSync(path)) {
    const what = existsSync(stamp) ? `${path} is missing` : `${stamp} is missing (base never finished building)`
    throw new Error(
      `testbed: the ${base} base is not provisioned: ${what}. ` +
        `Run \`bash scripts/provision.sh\` as root on Debian (it is what \`npm test\` runs first).`,
    )
  }
  return path
}

/** OCI image layout directory of the busybox base (tag {@link BASE_TAG}). */
export const busyboxLayout = (): string => basePath('busybox', 'busybox-oci')
/** OCI archive (tar of an OCI layout, tag {@link BASE_TAG}) of the busybox base. */
export const busyboxArchive = (): string => basePath('busybox', 'busybox.tar')
/** Uncompressed rootfs tar of the busybox base (the single layer's contents). */
export const busyboxRootfsTar = (): string => basePath('busybox', 'busybox-rootfs.tar')
/** OCI image layout directory of the Debian bookworm minbase (tag {@link BASE_TAG}). */
export const debianLayout = (): string => basePath('debian', 'debian-oci')
/** OCI archive of the Debian bookworm minbase. */
export const debianArchive = (): string => basePath('debian', 'debian.tar')
/** Uncompressed rootfs tar of the Debian base, as mmdebstrap made it. */
export const debianRootfsTar = (): string => basePath('debian', 'debian-rootfs.tar')

/** OCI layout of the arm64 busybox base (Debian's busybox-static:arm64; config architecture arm64). */
export const busyboxArm64Layout = (): string => basePath('busybox-arm64', 'busybox-arm64-oci')
/** OCI archive of the arm64 busybox base. */
export const busyboxArm64Archive = (): string => basePath('busybox-arm64', 'busybox-arm64.tar')
/** Uncompressed rootfs tar of the arm64 busybox base. */
export const busyboxArm64RootfsTar = (): string => basePath('busybox-arm64', 'busybox-arm64-rootfs.tar')

/**
 * Why arm64 programs cannot run here (no qemu-aarch64 handler with the F flag in binfmt_misc, or
 * no arm64 base), or undefined when they can: `describe.skipIf(arm64Unavailable() !== undefined)`.
 * provision.sh registers the handler; a kernel or container that refuses leaves these suites out.
 */
export function arm64Unavailable(): string | undefined {
  if (!existsSync(join(testbedDir(), 'busybox-arm64.stamp'))) return 'the busybox-arm64 base is not provisioned (bash scripts/provision.sh)'
  let handler: string
  try {
    handler = readFileSync('/proc/sys/fs/binfmt_misc/qemu-aarch64', 'utf8').slice(0, 4096)
  } catch {
    return 'no qemu-aarch64 handler in /proc/sys/fs/binfmt_misc (bash scripts/provision.sh as root)'
  }
  const lines = handler.split('\n')
  if (lines[0] !== 'enabled') return 'the qemu-aarch64 binfmt_misc handler is disabled'
  if (!lines.some((l) => l.startsWith('flags: ') && l.includes('F'))) return 'the qemu-aarch64 binfmt_misc handler lacks the F flag'
  return undefined
}

/** Recipe key of a base (contents of its stamp), or undefined when not provisioned. */
export function baseStamp(base: BaseName): string | undefined {
  const stamp = join(testbedDir(), `${base}.stamp`)
  return existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : undefined
}

// ---------------------------------------------------------------------------
// Temp dirs

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  let info: string
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return []
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    // mountinfo escapes space, tab, newline and backslash as octal
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix))
  return [...new Set(points)].sort((a, b) => b.length - a.length)
}

/** Removes a tree, lazily unmounting anything still mounted inside it first (overlay dirs of daemons). */
export async function removeTree(dir: string): Promise<void> {
  unmountUnder(dir)
  await rm(dir, { recursive: true, force: true, maxRetries: 3 })
}

/** Synchronous {@link removeTree}, for process-exit handlers. */
export function removeTreeSync(dir: string): void {
  unmountUnder(dir)
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
}

function unmountUnder(dir: string): void {
  for (const point of mountsUnder(dir)) {
    try {
      execFileSync('umount', ['-l', point], { stdio: 'ignore' })
    } catch {
      // already gone, or not ours to unmount: rm will report what remains
    }
  }
}

const exitCleanups = new Set<() => void>()
let exitHookInstalled = false

/**
 * Runs `fn` (synchronously, best effort) when this test process exits, as a last resort
 * for daemons and dirs whose async cleanup never ran. Returns a function that unregisters it.
 */
export function onProcessExit(fn: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const f of exitCleanups) {
        try {
          f()
        } catch {
          // best effort at exit
        }
      }
    })
  }
  exitCleanups.add(fn)
  return () => exitCleanups.delete(fn)
}

const liveTmpDirs = new Set<string>()
let tmpDirsHooked = false

function installExitHook(): void {
  if (tmpDirsHooked) return
  tmpDirsHooked = true
  onProcessExit(() => {
    for (const dir of liveTmpDirs) removeTreeSync(dir)
  })
}

/**
 * Creates a fresh temp dir (`$TMPDIR/<prefix>XXXXXX`) and tracks it until
 * {@link cleanupTmpDirs} (call it in `afterAll`); leftovers are removed at process exit.
 */
export async function tmpDir(prefix = 'ism-'): Promise<string> {
  installExitHook()
  const dir = await mkdtemp(join(tmpdir(), prefix))
  liveTmpDirs.add(dir)
  return dir
}

/**
 * Like {@link tmpDir}, but always under /tmp with a short name, for unix sockets
 * (a socket path must stay under 108 bytes).
 */
export async function shortTmpDir(prefix = 'ism-'): Promise<string> {
  installExitHook()
  const dir = await mkdtemp(join('/tmp', prefix))
  liveTmpDirs.add(dir)
  return dir
}

/** Removes one dir made by {@link tmpDir} (or any dir), unmounting what is left inside. */
export async function removeTmpDir(dir: string): Promise<void> {
  await removeTree(dir)
  liveTmpDirs.delete(dir)
}

/** Removes every dir made by {@link tmpDir} / {@link shortTmpDir} that is still there. */
export async function cleanupTmpDirs(): Promise<void> {
  const dirs = [...liveTmpDirs]
  await Promise.all(dirs.map((d) => removeTmpDir(d)))
}
