import { promises as fsp, type Dirent } from 'node:fs'
import { basename, join } from 'node:path'
import { tempPath } from './atomic-write.js'
import { ownerTag, sweepDeadOwners } from '../util/owner.js'
import { gcHolder, liveLeases, type LeaseRecord } from './lease.js'
import type { Store } from './store.js'

/**
 * Cache garbage collection: what the store holds, how recently each thing was used, and a prune
 * that removes the least recently used first. Use time is the mtime of the item (blob file, cache
 * entry, snapshot dir): written when made, touched when a build's lease ends (lease.ts). A layer's
 * cache entries go with its blob and share its use time.
 *
 * Safety:
 * - what a live build holds (its lease) is never removed; leases of dead pids are swept;
 * - blobs of named images (manifest, config, layers) are kept unless `all`;
 * - a cache entry goes before the blob it names, a name before its manifest, so a crash leaves no
 *   entry naming a missing blob (and lookups check `blobs.has` anyway);
 * - a remote record (a blob an imported cache answered for, not yet fetched; remote-blobs.ts) is
 *   kept like a blob, with the cache entries naming it and by named images, but counts its record's
 *   bytes only (the blob is not here); a record nothing needs, or whose blob is now here, goes;
 * - a snapshot is renamed to a temp name first (gone at once for readers), then removed; a crash
 *   leaves a temp dir that the next sweep takes.
 */

export type UsageKind = 'blob' | 'snapshot' | 'cache-mount' | 'index' | 'cache-entry' | 'script' | 'remote'

export interface UsageRecord {
  readonly kind: UsageKind
  /** Digest (blob, remote), diffID (snapshot), mount id (cache-mount), file name (index, cache-entry, script). */
  readonly id: string
  readonly size: number
  readonly lastUsed: Date
  /** Held by a running build's lease. */
  readonly inUse: boolean
  /** Needed by a named image (`imagesmith images`). */
  readonly named: boolean
  /** Cache entries (keys) whose result is this blob: removed with it, first. */
  readonly entries: readonly string[]
  /** Removed whenever a prune runs: a cache entry whose blob is gone. */
  readonly dangling?: boolean
}

export interface PruneOptions {
  /** Also what named images need, cache mounts and the store's indexes; the names go with them. */
  readonly all?: boolean
  /** Stop once the store holds at most this many bytes (least recently used go first). */
  readonly keepStorage?: number
  /** Only what was last used longer ago than this many milliseconds. */
  readonly until?: number
  readonly now?: number
}

export interface PruneResult {
  readonly removed: readonly UsageRecord[]
  readonly reclaimed: number
  /** Image names removed with their blobs (`all`). */
  readonly untagged: readonly string[]
}

const HEX = /^[0-9a-f]{64}$/
const GC_WAIT_MS = 50

async function readdirSafe(dir: string): Promise<Dirent[]> {
  try {
    return await fsp.readdir(dir, { withFileTypes: true })
  } catch {
    return []
  }
}

/**
 * Apparent size of a tree (files, symlinks), as `du --apparent-size` counts it: a file with several
 * links counts once across every tree walked with the same `seen` (snapshots hard-link the files
 * they share with the step's previous snapshot), in the first tree that has it.
 */
async function treeSize(dir: string, seen: Set<string>): Promise<number> {
  let total = 0
  const stack = [dir]
  while (stack.length) {
    const d = stack.pop()!
    for (const e of await readdirSafe(d)) {
      const p = join(d, e.name)
      if (e.isDirectory()) {
        stack.push(p)
        continue
      }
      const st = await fsp.lstat(p).catch(() => undefined)
      if (!st) continue
      if (st.nlink > 1) {
        const id = `${st.dev}:${st.ino}`
        if (seen.has(id)) continue
        seen.add(id)
      }
      total += st.size
    }
  }
  return total
}

/** Compiled build scripts (cli/load-script.ts keeps them under the store, one file per content digest). */
const scriptsDir = (store: Store): string => join(store.layout.root, 'scripts')

const mtime = (p: string): Promise<Date | undefined> => fsp.stat(p).then((s) => s.mtime, () => undefined)

interface Held {
  readonly cacheKeys: Set<string>
  readonly blobs: Set<string>
  readonly snapshots: Set<string>
  readonly any: boolean
}

function heldBy(leases: readonly LeaseRecord[]): Held {
  const hex = (v: string) => v.replace(/^sha256:/, '')
  return {
    cacheKeys: new Set(leases.flatMap((l) => l.cacheKeys.map(hex))),
    blobs: new Set(leases.flatMap((l) => l.blobs.map(hex))),
    snapshots: new Set(leases.flatMap((l) => l.snapshots.map(hex))),
    any: leases.length > 0,
  }
}

/** Manifests of one named index followed (ours list one image and one attestation manifest per platform). */
const MAX_INDEX_CHILDREN = 1024

/** Blob hexes every named image needs, and which names need each. */
async function namedBlobs(store: Store): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  const need = (d: string, name: string) => {
    const h = d.replace(/^sha256:/, '')
    out.set(h, [...(out.get(h) ?? []), name])
  }
  for (const r of await store.images.list()) {
    need(r.digest, r.name)
    try {
      type Doc = { config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] }
      const m = JSON.parse(await fsp.readFile(store.layout.blob(r.digest), 'utf8')) as Doc
      // An index (several platforms, or an image with its attestations) needs what each of its manifests needs.
      const docs = [m]
      for (const c of Array.isArray(m.manifests) ? m.manifests.slice(0, MAX_INDEX_CHILDREN) : []) {
        need(c.digest, r.name)
        docs.push(JSON.parse(await fsp.readFile(store.layout.blob(c.digest), 'utf8').catch(() => '{}')) as Doc)
      }
      for (const d of docs) {
        if (d.config) need(d.config.digest, r.name)
        for (const l of d.layers ?? []) need(l.digest, r.name)
      }
    } catch {
      /* manifest gone: the name is broken, nothing to keep */
    }
  }
  return out
}

interface Inventory {
  readonly records: UsageRecord[]
  readonly named: Map<string, string[]>
}

async function inventory(store: Store, held: Held): Promise<Inventory> {
  const layout = store.layout
  const named = await namedBlobs(store)
  // Cache entries by the blob they name (held here, or known by a remote record).
  const entriesOf = new Map<string, { key: string }[]>()
  const remoteEntriesOf = new Map<string, string[]>()
  const remote = new Set<string>()
  for (const e of await readdirSafe(layout.dir('remote'))) {
    const m = /^([0-9a-f]{64})\.json$/.exec(e.name)
    if (m) remote.add(m[1]!)
  }
  const records: UsageRecord[] = []
  const seen = new Set<string>()
  for (const e of await readdirSafe(layout.dir('cache'))) {
    const m = /^([0-9a-f]{64})\.json$/.exec(e.name)
    if (!m) continue
    const path = join(layout.dir('cache'), e.name)
    let blob: string | undefined
    let size = 0
    try {
      const text = await fsp.readFile(path, 'utf8')
      size = text.length
      blob = (JSON.parse(text) as { layer?: { digest?: string } }).layer?.digest?.replace(/^sha256:/, '')
    } catch {
      continue // replaced or removed meanwhile
    }
    const used = (await mtime(path)) ?? new Date(0)
    const inUse = held.cacheKeys.has(m[1]!)
    if (blob === undefined) {
      // Entries that name no layer (a step's slot, a context's file map): their own least-recently-used record.
      records.push({ kind: 'cache-entry', id: m[1]!, size, lastUsed: used, inUse, named: false, entries: [m[1]!] })
    } else if (HEX.test(blob) && (await fsp.access(layout.blob(blob)).then(() => true, () => false))) {
      entriesOf.set(blob, [...(entriesOf.get(blob) ?? []), { key: m[1]! }])
    } else if (remote.has(blob)) {
      remoteEntriesOf.set(blob, [...(remoteEntriesOf.get(blob) ?? []), m[1]!])
    } else {
      records.push({ kind: 'cache-entry', id: m[1]!, size, lastUsed: used, inUse, named: false, entries: [m[1]!], dangling: true })
    }
  }
  for (const e of await readdirSafe(layout.dir('blobs'))) {
    if (!HEX.test(e.name)) continue
    const st = await fsp.stat(join(layout.dir('blobs'), e.name)).catch(() => undefined)
    if (!st) continue
    const entries = entriesOf.get(e.name) ?? []
    // The blob's own use time and lease decide: a build reads an entry also to explain a miss (the
    // step's previous key), which is no use of its layer; a hit always checks (holds) the blob.
    const inUse = held.blobs.has(e.name)
    records.push({ kind: 'blob', id: `sha256:${e.name}`, size: st.size, lastUsed: st.mtime, inUse, named: named.has(e.name), entries: entries.map((x) => x.key) })
  }
  for (const hex of remote) {
    const path = layout.remoteBlob(hex)
    const st = await fsp.stat(path).catch(() => undefined)
    if (!st) continue
    const here = await fsp.access(layout.blob(hex)).then(() => true, () => false)
    const entries = here ? [] : remoteEntriesOf.get(hex) ?? []
    // Fetched since (its blob is here), or needed by no cache entry and no named image: it goes.
    const dangling = here || (entries.length === 0 && !named.has(hex))
    records.push({ kind: 'remote', id: `sha256:${hex}`, size: st.size, lastUsed: st.mtime, inUse: held.blobs.has(hex), named: !here && named.has(hex), entries, ...(dangling ? { dangling } : {}) })
  }
  for (const e of await readdirSafe(layout.dir('snapshots'))) {
    if (!e.isDirectory() || !HEX.test(e.name)) continue
    const dir = join(layout.dir('snapshots'), e.name)
    const used = await mtime(dir)
    if (!used) continue
    records.push({ kind: 'snapshot', id: `sha256:${e.name}`, size: await treeSize(dir, seen), lastUsed: used, inUse: held.snapshots.has(e.name), named: false, entries: [] })
  }
  for (const e of await readdirSafe(layout.dir('cacheMounts'))) {
    const dir = join(layout.dir('cacheMounts'), e.name)
    const used = await mtime(dir)
    if (!used) continue
    // Leases do not list cache mounts: any running build may be using one.
    records.push({ kind: 'cache-mount', id: decodeURIComponent(e.name), size: await treeSize(dir, seen), lastUsed: used, inUse: held.any, named: false, entries: [] })
  }
  for (const d of ['imageLookups', 'statCache', 'refs', 'layerMembers', 'layerFiles', 'layerZstd', 'probes'] as const) {
    for (const e of await readdirSafe(layout.dir(d))) {
      if (!e.isFile() || e.name.includes('.tmp-')) continue
      const st = await fsp.stat(join(layout.dir(d), e.name)).catch(() => undefined)
      if (!st) continue
      // Derived indexes: a build that finds one missing recomputes it; still, none under a live build.
      records.push({ kind: 'index', id: join(layout.dir(d), e.name).slice(layout.root.length + 1), size: st.size, lastUsed: st.mtime, inUse: held.any, named: false, entries: [] })
    }
  }
  for (const e of await readdirSafe(scriptsDir(store))) {
    if (!e.isFile() || e.name.includes('.tmp-')) continue
    const st = await fsp.stat(join(scriptsDir(store), e.name)).catch(() => undefined)
    if (!st) continue
    // Written when compiled, never touched by a hit: a script in use for longer than `until` is
    // compiled again on its next run. A loaded script is already in memory, so none is held.
    records.push({ kind: 'script', id: e.name, size: st.size, lastUsed: st.mtime, inUse: false, named: false, entries: [] })
  }
  return { records, named }
}

/** What the store holds, most recently used first (`imagesmith cache ls`). */
export async function cacheUsage(store: Store): Promise<UsageRecord[]> {
  const { records } = await inventory(store, heldBy(await liveLeases(store.layout)))
  return records.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime())
}

/** Takes `gc.lock` (waiting for another prune); the lock file appears whole, with our owner tag, via link(2). */
async function lockGc(store: Store): Promise<() => Promise<void>> {
  const lock = store.layout.gcLock()
  const tmp = tempPath(store.layout.dir('tmp'), 'gc.lock')
  await fsp.mkdir(store.layout.dir('tmp'), { recursive: true })
  await fsp.writeFile(tmp, ownerTag())
  try {
    for (;;) {
      try {
        await fsp.link(tmp, lock)
        break
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
        if ((await gcHolder(lock)) === undefined) await fsp.rm(lock, { force: true })
        else await new Promise((r) => setTimeout(r, GC_WAIT_MS))
      }
    }
  } finally {
    await fsp.rm(tmp, { force: true })
  }
  return () => fsp.rm(lock, { force: true })
}

async function removeRecord(store: Store, r: UsageRecord): Promise<void> {
  const layout = store.layout
  // Entries first: a crash here leaves a blob nothing names, never an entry naming nothing.
  for (const k of r.entries) await fsp.rm(layout.cacheEntry(k), { force: true })
  switch (r.kind) {
    case 'blob':
      await fsp.rm(layout.blob(r.id), { force: true })
      break
    case 'remote':
      await fsp.rm(layout.remoteBlob(r.id), { force: true })
      break
    case 'snapshot': {
      const dir = layout.snapshot(r.id)
      const tmp = tempPath(layout.dir('snapshots'), basename(dir))
      try {
        await fsp.rename(dir, tmp)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
      }
      await fsp.rm(`${dir}.json`, { force: true })
      await fsp.rm(tmp, { recursive: true, force: true })
      break
    }
    case 'cache-mount': {
      const dir = layout.cacheMount(r.id)
      const tmp = tempPath(layout.dir('tmp'), 'cache-mount')
      await fsp.rename(dir, tmp).catch(() => undefined)
      await fsp.rm(tmp, { recursive: true, force: true })
      break
    }
    case 'index':
      await fsp.rm(join(layout.root, r.id), { force: true })
      break
    case 'script':
      await fsp.rm(join(scriptsDir(store), r.id), { force: true })
      break
    case 'cache-entry':
      break
  }
}

/**
 * `imagesmith cache prune`: removes least recently used first. Without `keepStorage` or `until`
 * everything not held and not named goes (with `all`: named images too, and their names).
 */
export async function pruneCache(store: Store, opts: PruneOptions = {}): Promise<PruneResult> {
  const unlock = await lockGc(store)
  try {
    // Leases are read after the lock: a build holding something later waits for us, then re-checks.
    const held = heldBy(await liveLeases(store.layout))
    const { records, named } = await inventory(store, held)
    const now = opts.now ?? Date.now()
    const eligible = (r: UsageRecord) => {
      if (r.inUse) return false
      if (r.dangling) return true
      if (r.named && !opts.all) return false
      if ((r.kind === 'cache-mount' || r.kind === 'index') && !opts.all) return false
      return opts.until === undefined || now - r.lastUsed.getTime() > opts.until
    }
    const candidates = records.filter(eligible).sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime())
    let total = records.reduce((n, r) => n + r.size, 0)
    const removed: UsageRecord[] = []
    const untagged = new Set<string>()
    for (const r of candidates) {
      if (opts.keepStorage !== undefined && total <= opts.keepStorage && !r.dangling) continue
      // A name goes before the blobs it needs.
      if (r.kind === 'blob' || r.kind === 'remote') {
        for (const name of named.get(r.id.slice(7)) ?? []) {
          if (!untagged.has(name)) await store.images.remove(name)
          untagged.add(name)
        }
      }
      await removeRecord(store, r)
      removed.push(r)
      total -= r.size
    }
    // Owner locks of processes gone: each build leaves one (names of theirs left fall back to pids).
    sweepDeadOwners(store.layout.dir('owners'))
    return { removed, reclaimed: removed.reduce((n, r) => n + r.size, 0), untagged: [...untagged] }
  } finally {
    await unlock()
  }
}
