import { existsSync, promises as fsp } from 'node:fs'
import { register } from 'node:module'
import { extname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { MessageChannel, type MessagePort } from 'node:worker_threads'
import { setCliBuildArgs } from '../builder/cli-build-args.js'
import { ImageBuilder, isImageBuilder } from '../builder/image-builder.js'
import { ErrorCodes, ImagesmithError, isImagesmithError } from '../errors.js'
import { aliasCommonJs, importCommonJsScript } from './cjs-alias.js'
import { stopEsbuild } from './esbuild-service.js'
import { directScript } from './script-direct.js'

export interface LoadScriptOptions {
  /** The store's directory: transformed TypeScript scripts are kept under `scripts/` in it. */
  readonly cacheDir?: string
  /** The command's `--build-arg` values, seen by the script as `cliBuildArgs()` while it loads. */
  readonly buildArgs?: Readonly<Record<string, string>>
}

/**
 * Loads a build script: a TS or JS module whose default export is a builder, or a record of named
 * builders (picked with `--target`). TypeScript needs no compile step: from dist/ it loads through
 * our own module hooks (esbuild, cached per content), from a source checkout through tsx.
 */
export async function loadBuildScript(path: string, target?: string, opts: LoadScriptOptions = {}): Promise<{ builder: ImageBuilder; targets: string[]; stages?: Record<string, ImageBuilder> }> {
  const { file, mod } = await loadScriptModule(path, opts)
  return pickBuilder(file, mod, target)
}

/** The script's module as loaded (`imagesmith bake` reads every builder it exports), and its absolute path. */
export async function loadScriptModule(path: string, opts: LoadScriptOptions = {}): Promise<{ file: string; mod: Record<string, unknown> }> {
  const file = resolve(path)
  try {
    await fsp.access(file)
  } catch {
    throw new ImagesmithError(ErrorCodes.BUILD_SCRIPT_INVALID, `build script not found: ${file}`, { path: file })
  }
  setCliBuildArgs(opts.buildArgs ?? {})
  // A builder call's mistake names the script's own line (builder/call-site.ts): stacks are mapped
  // through the inline source maps the TypeScript transform writes, for modules loaded from here on.
  process.setSourceMapsEnabled(true)
  let mod: Record<string, unknown>
  try {
    const url = pathToFileURL(file).href
    if (['.ts', '.mts', '.cts', '.tsx'].includes(extname(file))) {
      mod = (await importTypeScript(url, opts.cacheDir)) as Record<string, unknown>
    } else {
      mod = (await importJavaScript(url, opts.cacheDir)) as Record<string, unknown>
    }
  } catch (e) {
    if (isImagesmithError(e)) throw e
    throw new ImagesmithError(ErrorCodes.BUILD_SCRIPT_INVALID, `cannot load build script ${file}: ${(e as Error)?.message ?? e}`, { path: file }, { cause: e })
  } finally {
    // The script is loaded: esbuild's processes end here, not with the CLI (which would leave them to init).
    await stopScriptCompilers()
  }
  return { file, mod }
}

function pickBuilder(file: string, mod: Record<string, unknown>, target: string | undefined): { builder: ImageBuilder; targets: string[]; stages?: Record<string, ImageBuilder> } {
  let exported = mod.default
  // tsx may wrap a CJS-style module's default export once more.
  if (exported && typeof exported === 'object' && !(exported instanceof ImageBuilder) && 'default' in exported && Object.keys(exported).length === 1) {
    exported = (exported as { default: unknown }).default
  }
  if (isImageBuilder(exported)) {
    if (target) throw new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `--target ${target}: ${file} exports a single builder`, { path: file, target })
    return { builder: exported, targets: [] }
  }
  if (exported && typeof exported === 'object') {
    const record = exported as Record<string, unknown>
    const targets = Object.keys(record).filter((k) => isImageBuilder(record[k]))
    if (targets.length === 0) throw notBuilder(file)
    const name = target ?? (targets.length === 1 ? targets[0]! : undefined)
    if (!name) {
      throw new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `${file} exports several builders; pick one with --target (${targets.join(', ')})`, { path: file, targets })
    }
    const b = record[name]
    if (!isImageBuilder(b)) {
      throw new ImagesmithError(ErrorCodes.TARGET_NOT_FOUND, `target ${JSON.stringify(name)} not found in ${file} (targets: ${targets.join(', ')})`, { path: file, target: name, targets })
    }
    // The record's keys name its stages (`--no-cache-filter`).
    return { builder: b, targets, stages: Object.fromEntries(targets.map((k) => [k, record[k] as ImageBuilder])) }
  }
  throw notBuilder(file)
}

/** Builders from another copy of the package (e.g. a script's own node_modules) still count. */
function notBuilder(file: string): ImagesmithError {
  return new ImagesmithError(ErrorCodes.BUILD_SCRIPT_INVALID, `${file} must default-export an image builder (image()...) or a record of them`, { path: file })
}

/**
 * When this module itself was loaded through tsx (the CLI run from a source checkout), a plain
 * import() of the script stays in tsx's namespace: the script's `import 'imagesmith'` then reuses
 * the modules already loaded. A fresh tsImport() would load the whole library a second time under
 * a new namespace (+35 MB RSS measured on `imagesmith build`), and the script's builders would be
 * instances of that second copy. From dist/, `imagesmith` is the CLI's own entry: compiled into a
 * self-contained script (script-direct.ts), or mapped by our module hooks (script-hooks.ts).
 */
async function importTypeScript(url: string, cacheDir: string | undefined): Promise<unknown> {
  if (new URL(import.meta.url).searchParams.has('tsx-namespace')) return import(url)
  const own = ownEntries()
  if (!own) return import('tsx/esm/api').then(({ tsImport }) => tsImport(url, import.meta.url))
  const scripts = cacheDir ? join(cacheDir, 'scripts') : ''
  // require() in any script (and a .cts script whole) goes through Node's own CommonJS loader.
  aliasCommonJs(own.files, scripts)
  if (url.endsWith('.cts')) return importCommonJsScript(fileURLToPath(url))
  const direct = await directScript(fileURLToPath(url), scripts, own.aliases)
  if (direct) return import(direct)
  registerScriptHooks(own.hooks, scripts, own.aliases)
  return import(url)
}

/** A JS (ESM) script's `import 'imagesmith'` must be the CLI's copy too: the hooks' resolve maps it. */
function importJavaScript(url: string, cacheDir: string | undefined): Promise<unknown> {
  const own = new URL(import.meta.url).searchParams.has('tsx-namespace') ? undefined : ownEntries()
  if (own) {
    aliasCommonJs(own.files, cacheDir ? join(cacheDir, 'scripts') : '')
    registerScriptHooks(own.hooks, cacheDir ? join(cacheDir, 'scripts') : '', own.aliases)
  }
  return import(url)
}

/** Talks to the hooks' thread once they are registered (script-hooks.ts `initialize`). */
let hooksPort: MessagePort | undefined

function registerScriptHooks(hooks: URL, scripts: string, aliases: Record<string, string>): void {
  if (hooksPort) return
  const { port1, port2 } = new MessageChannel()
  port1.unref()
  hooksPort = port1
  register(hooks, { data: { cacheDir: scripts, aliases, port: port2 }, transferList: [port2] })
}

/** How long the hooks' thread may take to stop its esbuild (it answers in a few ms). */
const HOOKS_STOP_WAIT_MS = 5000

/**
 * Stops the esbuild services the loaders started, in this thread and in the hooks' thread, and
 * waits until their processes are reaped. A later transform starts a new service.
 */
export async function stopScriptCompilers(): Promise<void> {
  const port = hooksPort
  if (port) {
    await new Promise<void>((done) => {
      const timer = setTimeout(done, HOOKS_STOP_WAIT_MS)
      port.once('message', () => {
        clearTimeout(timer)
        done()
      })
      port.postMessage('stop')
      port.unref()
    })
  }
  await stopEsbuild()
}

/**
 * From dist/: the hooks module and the specifiers that must load the CLI's own entries. Undefined
 * where the hooks are not built (this file run as source).
 */
function ownEntries(): { hooks: URL; aliases: Record<string, string>; files: Record<string, string> } | undefined {
  const here = (rel: string) => new URL(rel, import.meta.url)
  const hooks = here('./script-hooks.js')
  if (!existsSync(fileURLToPath(hooks))) return undefined
  const entries: Record<string, string> = { imagesmith: here('./index.js').href, 'imagesmith/codegen': here('./codegen.js').href }
  const aliases: Record<string, string> = { ...entries }
  // In a source checkout, scripts (tests, benches) may import the entry by its path.
  for (const [src, name] of [['../src/index.ts', 'imagesmith'], ['../src/codegen/index.ts', 'imagesmith/codegen']] as const) {
    if (existsSync(fileURLToPath(here(src)))) aliases[here(src).href] = entries[name]!
  }
  const files = Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, fileURLToPath(v)]))
  return { hooks, aliases, files }
}
