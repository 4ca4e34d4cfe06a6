/**
 * Answers of host probes (which OCI runtime runs a container, whether overlay mounts in the store's
 * work dir), kept in the store across processes. Each probe runs containers or mounts: a runtime
 * trial that fails on crun and passes on runc, plus the overlay probe, cost a RUN step 0.3–0.6 s in
 * every build process, more than a one-file COPY rebuild's own compression.
 *
 * An answer is reused only by a process that sees the same host as the one that probed: the same
 * boot, mount and user namespaces, uid, store filesystem, and whatever the caller adds (the runtime
 * binaries' inodes, sizes and mtimes). A store shared by containers keeps one record per such
 * identity; any doubt (no record, another identity, a value the caller rejects) probes again.
 */
import { createHash } from 'node:crypto'
import { promises as fsp, readFileSync, readlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from './atomic-write.js'

/** Records larger than this are not ours (a probe answer is a few hundred bytes). */
const RECORD_MAX = 64 << 10

/** What a probe answer depends on beyond the caller's own parts; undefined when it cannot be told. */
export function hostIdentity(storeRoot: string): string[] | undefined {
  try {
    return [
      readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      readlinkSync('/proc/self/ns/mnt'),
      readlinkSync('/proc/self/ns/user'),
      `${process.getuid?.()}:${process.getgid?.()}`,
      `dev ${statSync(storeRoot).dev}`,
    ]
  } catch {
    return undefined
  }
}

/**
 * The answer `probe` gave a process of the same identity (`hostIdentity` plus `parts`), read from
 * `dir`; otherwise runs `probe` and records what it returns (a probe that throws records nothing).
 * `valid` checks a recorded value's shape before it is trusted; `keep` says which answers are
 * worth recording (all by default).
 */
export async function rememberedProbe<T>(
  dir: string,
  storeRoot: string,
  name: string,
  parts: readonly string[],
  valid: (v: unknown) => v is T,
  probe: () => Promise<T>,
  keep: (v: T) => boolean = () => true,
): Promise<T> {
  const host = hostIdentity(storeRoot)
  if (!host) return probe()
  const identity = [name, ...host, ...parts]
  const path = join(dir, `${createHash('sha256').update(JSON.stringify(identity)).digest('hex')}.json`)
  const known = await readRecord(path, identity)
  if (known !== undefined && valid(known.value)) return known.value
  const value = await probe()
  if (!keep(value)) return value
  try {
    await fsp.mkdir(dir, { recursive: true })
    await writeFileAtomic(path, JSON.stringify({ identity, value }))
  } catch {
    // Not recorded: the next process probes again.
  }
  return value
}

async function readRecord(path: string, identity: readonly string[]): Promise<{ value: unknown } | undefined> {
  try {
    const st = await fsp.stat(path)
    if (!st.isFile() || st.size > RECORD_MAX) return undefined
    const doc = JSON.parse(await fsp.readFile(path, 'utf8')) as { identity?: unknown; value?: unknown }
    if (!Array.isArray(doc.identity) || doc.identity.length !== identity.length || doc.identity.some((x, i) => x !== identity[i])) return undefined
    return { value: doc.value }
  } catch {
    return undefined
  }
}
