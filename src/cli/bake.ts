/**
 * `imagesmith bake`: every target of a build script (its exported builders) or of buildx bake files
 * (`-f docker-bake.json`) in one solve. Targets that share a context directory share one solve; a bake
 * file whose targets have different contexts solves them one context after another, on one store, so
 * a step they share still runs once.
 */
import { promises as fsp } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import type { ImageBuilder } from '../builder/image-builder.js'
import { bake, type BakeOptions, type BakeResult, type BakeTargetOptions } from '../bake/build.js'
import { bakePrintJson, MAX_BAKE_FILE_BYTES, parseBakeFiles, resolveBake, scriptTargets, selectScriptTargets, type BakeEntry, type BakeTarget, type ScriptTargetSettings } from '../bake/index.js'
import { fromDockerfile, type DockerfileImport } from '../dockerfile/import.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { OutputSpec } from '../pipeline/options.js'
import { writeFileAtomic } from '../store/atomic-write.js'
import { defaultCacheDir } from '../store/default-dir.js'
import { cacheExportOf, cacheImportOf } from '../cache-share/options.js'
import { attestEntries } from './supply-flags.js'
import { UsageError, assertKnownFlags, many, one, parseCsvPairs, type ParsedArgs } from './args.js'
import { buildArgs } from './build-inputs.js'
import { parseOutput } from './build.js'
import type { Io } from './io.js'
import { loadScriptModule } from './load-script.js'
import { buildMetadata } from './metadata.js'
import { PROGRESS_MODES, progressMode, progressRenderer, withoutOutputTail } from './progress.js'
import { REGISTRY_FLAGS, registryFlags } from './registry-flags.js'

export const BAKE_FLAGS: readonly string[] = Object.freeze(['--file', '--context', '--out-dir', '--push', '--set', '--print', '--metadata-file', '--progress', '--cache-dir', '--no-cache', '--build-arg', '--network', '--runtime', '--pull', ...REGISTRY_FLAGS])

export const BAKE_HELP = `  imagesmith bake <build.ts> [TARGET...] | -f docker-bake.json [TARGET|GROUP...]
                   [--out-dir DIR] [--push] [--set TARGET.KEY=VALUE]... [--print] [--metadata-file PATH]
                   [--progress auto|plain|tty|rawjson|quiet] [--cache-dir DIR] [--context DIR] [--no-cache]
                   every target in one solve (a step targets share runs once); --out-dir writes DIR/<target>.tar;
                   --set '*.tags=registry/{target}:1'; --print shows the resolved targets as JSON; bake files are JSON`

/** One target ready to bake: its builder, its own options, and the context directory its solve reads. */
interface PlannedTarget {
  readonly name: string
  readonly builder: ImageBuilder
  readonly options: BakeTargetOptions
  readonly context: string
}

export async function bakeCommand(args: ParsedArgs, io: Io, signal?: AbortSignal): Promise<number> {
  assertKnownFlags(args, BAKE_FLAGS)
  const progress = one(args, '--progress') ?? 'auto'
  if (!(PROGRESS_MODES as readonly string[]).includes(progress)) throw new UsageError(`--progress must be ${PROGRESS_MODES.join(', ')}`)
  const network = one(args, '--network')
  if (network !== undefined && network !== 'default' && network !== 'none') throw new UsageError(`--network ${network}: a bake's network is default or none`)
  const files = many(args, '--file')
  const sets = many(args, '--set')
  const cacheDir = one(args, '--cache-dir') ?? defaultCacheDir()
  const planned = files.length > 0 ? await fileTargets(args, files, sets, io) : await scriptPlan(args, sets, cacheDir, io)
  if (!planned) return 0 // --print

  const renderer = progressRenderer(progressMode(progress, io.isTTY === true), io)
  const results: Record<string, BakeResult[string]> = {}
  try {
    // One solve per context directory, in the order the targets came.
    const byContext = new Map<string, PlannedTarget[]>()
    for (const t of planned) byContext.set(t.context, [...(byContext.get(t.context) ?? []), t])
    for (const [context, group] of byContext) {
      const options: BakeOptions = {
        context,
        cacheDir,
        noCache: args.flags.has('--no-cache'),
        pull: args.flags.has('--pull'),
        ...(network ? { network: network as 'default' | 'none' } : {}),
        ...(one(args, '--runtime') ? { runtime: one(args, '--runtime')! } : {}),
        ...(registryFlags(args) ? { registry: registryFlags(args)! } : {}),
        ...(one(args, '--out-dir') !== undefined ? { outDir: one(args, '--out-dir')! } : {}),
        targets: Object.fromEntries(group.map((t) => [t.name, t.options])),
        signal,
        onProgress: renderer.onEvent,
      }
      Object.assign(results, await bake(Object.fromEntries(group.map((t) => [t.name, t.builder])), options))
    }
  } catch (e) {
    throw renderer.showsOutput ? withoutOutputTail(e) : e
  } finally {
    renderer.finish()
  }
  const metadataFile = one(args, '--metadata-file')
  if (metadataFile !== undefined) {
    const doc = Object.fromEntries(planned.map((t) => [t.name, buildMetadata(results[t.name]!, t.options.tags ?? [])]))
    const file = resolve(metadataFile)
    await fsp.mkdir(dirname(file), { recursive: true })
    await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`)
  }
  // A solve's cache warnings reach every target's result: each is said once.
  for (const w of new Set(planned.flatMap((t) => results[t.name]!.cache?.warnings ?? []))) io.err(`warning: ${w}\n`)
  for (const t of planned) io.out(`${t.name} ${results[t.name]!.digest}\n`)
  return 0
}

/** A build script's targets: `bake build.ts [TARGET…]`. */
async function scriptPlan(args: ParsedArgs, sets: readonly string[], cacheDir: string, io: Io): Promise<PlannedTarget[] | undefined> {
  const [path, ...requested] = args.positionals
  if (!path) throw new UsageError('bake needs a build script path, or -f BAKE_FILE')
  const { file, mod } = await loadScriptModule(path, { cacheDir, buildArgs: buildArgs(args) })
  const builders = scriptTargets(mod, file)
  const selected = selectScriptTargets(builders, requested, { set: sets, env: process.env, file })
  if (args.flags.has('--print')) {
    const wanted = selected.filter((t) => !t.settings.linked)
    io.out(`${JSON.stringify({ group: { default: { targets: wanted.map((t) => t.name) } }, target: Object.fromEntries(selected.map(({ name, settings: { name: _n, ...rest } }) => [name, rest])) }, null, 2)}\n`)
    return undefined
  }
  const context = one(args, '--context') ?? '.'
  return selected
    .filter((t) => !t.settings.linked)
    .map((t) => ({
      name: t.name,
      builder: t.builder,
      options: targetOptionsOf(t.settings, args, (n) => builders[n]!, file),
      context: t.settings.context === '.' ? context : t.settings.context,
    }))
}

/** Bake files' targets: `bake -f docker-bake.json [TARGET|GROUP…]`, each a Dockerfile build. */
async function fileTargets(args: ParsedArgs, files: readonly string[], sets: readonly string[], io: Io): Promise<PlannedTarget[] | undefined> {
  const sources = []
  for (const f of files) {
    const st = await fsp.stat(f).catch((e: NodeJS.ErrnoException) => {
      throw new ImagesmithError(ErrorCodes.BAKE_FILE_INVALID, `cannot read bake file ${f}: ${e.message}`, { file: f }, { cause: e })
    })
    if (st.size > MAX_BAKE_FILE_BYTES) throw new ImagesmithError(ErrorCodes.BAKE_FILE_INVALID, `${f} is larger than ${MAX_BAKE_FILE_BYTES} bytes`, { file: f, limit: MAX_BAKE_FILE_BYTES })
    sources.push({ name: f, text: await fsp.readFile(f, 'utf8') })
  }
  const config = parseBakeFiles(sources, { env: process.env })
  const plan = resolveBake(config, args.positionals, { set: sets, env: process.env })
  if (args.flags.has('--print')) {
    io.out(`${bakePrintJson(plan)}\n`)
    return undefined
  }
  const imports = new Map<string, DockerfileImport>()
  const importOf = (name: string): DockerfileImport => {
    let i = imports.get(name)
    if (!i) {
      i = importTarget(plan.targets[name]!)
      imports.set(name, i)
    }
    return i
  }
  return Object.values(plan.targets)
    .filter((t) => !t.linked)
    .map((t) => {
      // buildx's `call` (check, outline, targets) runs no build: only `build` is one.
      if (t.call !== undefined && t.call !== 'build') {
        throw new ImagesmithError(ErrorCodes.BAKE_FILE_INVALID, `target ${JSON.stringify(t.name)}: call ${JSON.stringify(t.call)} is not supported (only build)`, { file: files[0]!, target: t.name, key: 'call' })
      }
      const imported = importOf(t.name)
      const multi = t.platforms.length > 1
      return {
        name: t.name,
        builder: imported.target,
        options: {
          ...targetOptionsOf(t, args, (n) => importOf(n).target, files[0]!),
          stages: imported.stages,
          // Each platform's import sees its own TARGETPLATFORM, TARGETARCH, … (as `build -f` does).
          ...(multi ? { targetFor: (p: string) => { const i = importTarget(t, p); return { target: i.target, stages: i.stages } } } : {}),
        },
        context: t.context,
      }
    })
}

/** A bake file target's Dockerfile, imported with its args and stage (`target:NAME` contexts are bake()'s). */
function importTarget(t: BakeTarget, platform: string | undefined = t.platforms[0]): DockerfileImport {
  const dockerfile = t.dockerfileInline ?? (isAbsolute(t.dockerfile) ? t.dockerfile : join(t.context, t.dockerfile))
  const plainContexts = Object.fromEntries(Object.entries(t.contexts).filter(([, v]) => !v.startsWith('target:')))
  return fromDockerfile(dockerfile, {
    buildArgs: t.args,
    ...(t.target !== undefined ? { target: t.target } : {}),
    ...(platform !== undefined ? { platform } : {}),
    contextDir: t.context,
    ...(t.dockerfileInline !== undefined ? { filename: `${t.name}: dockerfile-inline` } : {}),
    ...(Object.keys(plainContexts).length > 0 ? { buildContexts: plainContexts } : {}),
  })
}

/** What `--set` and the file said of a target, as bake() takes it; what one solve cannot vary per target is refused. */
function targetOptionsOf(s: ScriptTargetSettings, args: ParsedArgs, builderOf: (name: string) => ImageBuilder, file: string): BakeTargetOptions {
  const refuse = (key: string, why: string): never => {
    throw new ImagesmithError(ErrorCodes.BAKE_FILE_INVALID, `target ${JSON.stringify(s.name)}: ${key} ${why}`, { file, target: s.name, key })
  }
  const cacheFrom = s.cacheFrom.map((e) => cacheEntry(e, 'cache-from', refuse, (t) => cacheImportOf(t, parseCsvPairs(t, 'cache-from'))))
  const cacheTo = s.cacheTo.map((e) => cacheEntry(e, 'cache-to', refuse, (t) => cacheExportOf(t, parseCsvPairs(t, 'cache-to'))))
  const attested = cacheEntry({ type: 'attest' }, 'attest', refuse, () => attestEntries(s.attest.map(entryText), 'attest'))
  const attest = attested.sbom || attested.provenance
    ? { ...(attested.sbom ? { sbom: true } : {}), ...(attested.provenance ? { provenance: attested.provenance } : {}), ...(attested.builderId ? { builderId: attested.builderId } : {}) }
    : undefined
  if (s.secrets.length > 0 || s.ssh.length > 0) refuse(s.secrets.length > 0 ? 'secret' : 'ssh', 'is not supported per target in a bake')
  if (s.network !== undefined || s.shmSize !== undefined || s.ulimits.length > 0 || Object.keys(s.extraHosts).length > 0 || s.entitlements.length > 0) {
    refuse('network, shm-size, ulimits, extra-hosts and entitlements', 'are one for the whole solve: give --network on the command line')
  }
  if (s.noCache !== undefined || s.noCacheFilter.length > 0) refuse('no-cache', 'is one for the whole solve: give --no-cache on the command line')
  if (s.pull !== undefined && s.pull !== args.flags.has('--pull')) refuse('pull', 'is one for the whole solve: give --pull on the command line')
  const output = outputOf(s, args)
  const plain = Object.fromEntries(Object.entries(s.contexts).filter(([, v]) => !v.startsWith('target:')))
  const linked = Object.fromEntries(Object.entries(s.contexts).filter(([, v]) => v.startsWith('target:')).map(([k, v]) => [k, builderOf(v.slice('target:'.length))]))
  return {
    ...(s.tags.length > 0 ? { tags: [...s.tags] } : {}),
    ...(output ? { output } : {}),
    ...(Object.keys(s.args).length > 0 ? { buildArgs: { ...s.args } } : {}),
    ...(s.platforms.length > 1 ? { platforms: [...s.platforms] } : s.platforms.length === 1 ? { platform: s.platforms[0]! } : {}),
    ...(Object.keys(s.labels).length > 0 ? { labels: { ...s.labels } } : {}),
    ...(s.annotations.length > 0 ? { annotations: [...s.annotations] } : {}),
    ...(Object.keys(plain).length > 0 ? { buildContexts: plain } : {}),
    ...(Object.keys(linked).length > 0 ? { targetContexts: linked } : {}),
    ...(cacheFrom.length > 0 ? { cacheFrom } : {}),
    ...(cacheTo.length > 0 ? { cacheTo } : {}),
    ...(attest ? { attest } : {}),
  }
}

/** A bake file's cache entry read as the `--cache-from` / `--cache-to` flag reads its csv; a bad one names the target and key. */
function cacheEntry<T>(e: BakeEntry, key: string, refuse: (key: string, why: string) => never, read: (text: string) => T): T {
  try {
    return read(entryText(e))
  } catch (err) {
    return refuse(key, `: ${(err as Error).message}`)
  }
}

/** `--push` for every target, else the target's own `output` (one; `cacheonly` none), else `--out-dir`'s (bake() gives it). */
function outputOf(s: ScriptTargetSettings, args: ParsedArgs): OutputSpec | undefined {
  if (args.flags.has('--push')) return { type: 'registry' }
  const outs = s.outputs.filter((o) => o.type !== 'cacheonly')
  if (outs.length > 1) throw new ImagesmithError(ErrorCodes.BAKE_FILE_INVALID, `target ${JSON.stringify(s.name)}: one output per target`, { target: s.name, key: 'output' })
  return outs[0] ? parseOutput(entryText(outs[0])) : undefined
}

const entryText = (e: BakeEntry): string =>
  Object.entries(e)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')
