import { defaultCacheDir } from '../store/default-dir.js'
import type { UsageRecord } from '../store/gc.js'
import { pruneStore, storeUsage } from '../rootless/prune.js'
import { Store } from '../store/store.js'
import { UsageError, assertKnownFlags, many, one, type ParsedArgs } from './args.js'
import { formatAge, formatBytes, parseBytes, parseDuration } from './format.js'

type Io = { out: (s: string) => void; err: (s: string) => void }

export const CACHE_HELP = `  imagesmith cache ls [--format json] | du | prune [--keep-storage 10GB] [--filter until=24h] [--all] [--cache-dir DIR]
  Prune removes least recently used first (blobs with their cache entries, unpacked snapshots, compiled scripts), never what a running
  build holds; blobs of named images are kept unless --all (which also takes cache mounts, indexes and the names).`

/** `imagesmith cache ls | du | prune`, as `docker buildx du` / `docker builder prune`. */
export async function cacheCommand(args: ParsedArgs, io: Io): Promise<number> {
  const [sub, extra] = args.positionals
  if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
  if (sub === 'ls') {
    assertKnownFlags(args, ['--cache-dir', '--format'])
    const format = one(args, '--format')
    if (format !== undefined && format !== 'json') throw new UsageError('--format must be json')
    const store = await openStore(args)
    const records = await storeUsage(store)
    const steps = await stepsOf(store, records)
    if (format === 'json') io.out(`${JSON.stringify(records.map((r) => toJson(r, steps.get(r))), null, 2)}\n`)
    else table(io, records, steps)
    return 0
  }
  if (sub === 'du') {
    assertKnownFlags(args, ['--cache-dir'])
    const records = await storeUsage(await openStore(args))
    const sum = (rs: UsageRecord[]) => formatBytes(rs.reduce((n, r) => n + r.size, 0))
    const labels = { blob: 'Blobs:', snapshot: 'Snapshots:', 'cache-mount': 'Cache mounts:', index: 'Indexes:', 'cache-entry': 'Cache entries:', script: 'Scripts:' } as const
    for (const kind of ['blob', 'snapshot', 'cache-mount', 'index', 'cache-entry', 'script'] as const) {
      const rs = records.filter((r) => r.kind === kind)
      io.out(`${labels[kind].padEnd(15)}${String(rs.length).padStart(6)}  ${sum(rs).padStart(9)}\n`)
    }
    io.out(`${'In use:'.padEnd(15)}${sum(records.filter((r) => r.inUse)).padStart(17)}\n`)
    io.out(`${'Named images:'.padEnd(15)}${sum(records.filter((r) => r.named)).padStart(17)}\n`)
    io.out(`${'Reclaimable:'.padEnd(15)}${sum(records.filter((r) => !r.inUse && !r.named)).padStart(17)}\n`)
    io.out(`${'Total:'.padEnd(15)}${sum(records).padStart(17)}\n`)
    return 0
  }
  if (sub === 'prune') {
    assertKnownFlags(args, ['--cache-dir', '--keep-storage', '--filter', '--all', '--force'])
    const keepText = one(args, '--keep-storage')
    const keepStorage = keepText === undefined ? undefined : parseBytes(keepText)
    if (keepText !== undefined && keepStorage === undefined) throw new UsageError(`--keep-storage ${keepText}: a size such as 10GB, 512MB or 2048`)
    let until: number | undefined
    for (const f of many(args, '--filter')) {
      const m = /^until=(.+)$/.exec(f)
      const d = m ? parseDuration(m[1]!) : undefined
      if (d === undefined) throw new UsageError(`--filter ${f}: only until=DURATION (e.g. 24h, 90m, 7d) is supported`)
      until = d
    }
    const result = await pruneStore(await openStore(args), {
      all: args.flags.has('--all'),
      ...(keepStorage !== undefined ? { keepStorage } : {}),
      ...(until !== undefined ? { until } : {}),
    })
    for (const name of result.untagged) io.out(`Untagged: ${name}\n`)
    for (const r of result.removed) io.out(`Deleted ${r.kind} ${r.id}\n`)
    io.out(`Total reclaimed space: ${formatBytes(result.reclaimed)}\n`)
    return 0
  }
  throw new UsageError('cache needs a subcommand: ls, du or prune')
}

async function openStore(args: ParsedArgs): Promise<Store> {
  const store = new Store(one(args, '--cache-dir') ?? defaultCacheDir())
  await store.init()
  return store
}

/** What a cache entry records of the step that made it (layer-cache): its description and stage. */
interface StepOf {
  readonly description?: unknown
  readonly stage?: unknown
}

/**
 * The step each record's cache entries belong to (`[stage] COPY . /app`): a layer blob by the step
 * that made it, a step's slot by that step. Entries of older builds recorded none.
 */
async function stepsOf(store: Store, records: readonly UsageRecord[]): Promise<Map<UsageRecord, string>> {
  const out = new Map<UsageRecord, string>()
  for (const r of records) {
    for (const key of r.entries) {
      const e = await store.cache.lookup<StepOf>(key)
      if (typeof e?.description !== 'string') continue
      out.set(r, `${typeof e.stage === 'string' ? `[${e.stage}] ` : ''}${e.description}`)
      break
    }
  }
  return out
}

function toJson(r: UsageRecord, step: string | undefined) {
  return { kind: r.kind, id: r.id, size: r.size, lastUsed: r.lastUsed.toISOString(), inUse: r.inUse, named: r.named, cacheEntries: r.entries.length, ...(step !== undefined ? { step } : {}) }
}

/** A step's description in a table cell: one line, at most this many characters. */
const STEP_WIDTH = 60

function table(io: Io, records: UsageRecord[], steps: ReadonlyMap<UsageRecord, string>): void {
  const cell = (s: string | undefined) => {
    const line = (s ?? '').replace(/\s+/g, ' ')
    return line.length > STEP_WIDTH ? `${line.slice(0, STEP_WIDTH - 3)}...` : line
  }
  const rows = [['ID', 'KIND', 'SIZE', 'LAST USED', 'IN USE', 'NAMED', 'STEP'], ...records.map((r) => [r.id.replace(/^sha256:/, '').slice(0, 25), r.kind, formatBytes(r.size), formatAge(r.lastUsed.toISOString()), r.inUse ? 'yes' : '', r.named ? 'yes' : '', cell(steps.get(r))])]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  for (const row of rows) io.out(`${row.map((c, i) => c.padEnd(widths[i]! + 2)).join('').trimEnd()}\n`)
}
