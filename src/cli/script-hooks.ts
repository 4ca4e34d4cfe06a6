/**
 * Module hooks (`node:module` register) that load a TypeScript build script when the CLI runs from
 * dist/. tsx costs ~0.3 s per process (its own loader plus a transform of every module it meets);
 * here a .ts file is transformed once per content by esbuild and the result kept in the cache dir,
 * so an unchanged script loads without starting esbuild at all. Only node builtins and the small
 * cache writer are imported eagerly: this module runs in the loader thread, whose start-up every build pays.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { MessagePort } from 'node:worker_threads'
import { esbuild, stopEsbuild } from './esbuild-service.js'
import { writeScriptCache } from './script-cache.js'

export interface ScriptHooksData {
  /** Where transformed scripts are kept (one file per content digest). */
  readonly cacheDir: string
  /**
   * Specifiers or resolved URLs → the URL to load instead: `imagesmith` and the checkout's
   * src/index.ts map to the CLI's own entry, so a script's builders are instances of the very
   * classes the CLI checks them against.
   */
  readonly aliases: Readonly<Record<string, string>>
  /**
   * Where the CLI asks this thread to stop its esbuild service ('stop'); answered with 'stopped'
   * once the service's process is reaped (esbuild-service.ts).
   */
  readonly port?: MessagePort
}

interface ResolveContext { parentURL?: string | undefined; conditions?: readonly string[]; importAttributes?: Record<string, string> }
interface ResolveResult { url: string; format?: string | null | undefined; shortCircuit?: boolean }
interface LoadContext { format?: string | null | undefined; conditions?: readonly string[]; importAttributes?: Record<string, string> }
interface LoadResult { format: string; source?: string | ArrayBuffer | Uint8Array | null | undefined; shortCircuit?: boolean }

/** Bump when the transform's options change: it is part of every cache key. */
const TRANSFORM_VERSION = 'esbuild-esm-node20-v2'
const TS_EXTENSIONS = new Set(['.ts', '.mts', '.tsx'])

let data: ScriptHooksData = { cacheDir: '', aliases: {} }

export function initialize(d: ScriptHooksData): void {
  data = d
  const port = d.port
  if (!port) return
  port.on('message', () => void stopEsbuild().then(() => port.postMessage('stopped')))
  // Waiting for the CLI's request must not keep the process alive.
  port.unref()
}

export async function resolve(specifier: string, context: ResolveContext, next: (s: string, c: ResolveContext) => Promise<ResolveResult>): Promise<ResolveResult> {
  const alias = data.aliases[specifier]
  if (alias) return { url: alias, shortCircuit: true }
  try {
    const r = await next(specifier, context)
    const byUrl = data.aliases[r.url]
    return byUrl ? { url: byUrl, shortCircuit: true } : r
  } catch (e) {
    // TypeScript sources import their siblings as './x.js' (NodeNext) or without an extension.
    const url = isTypeScript(context.parentURL) ? typeScriptSibling(specifier, context.parentURL!) : undefined
    if (url) return { url: data.aliases[url] ?? url, shortCircuit: true }
    throw e
  }
}

export async function load(url: string, context: LoadContext, next: (u: string, c: LoadContext) => Promise<LoadResult>): Promise<LoadResult> {
  if (!isTypeScript(url)) return next(url, context)
  const file = fileURLToPath(url)
  return { format: 'module', source: await transformCached(file, readFileSync(file, 'utf8'), data.cacheDir), shortCircuit: true }
}

/**
 * esbuild's TypeScript → ESM transform, cached by the file's path and content (the path is part of
 * the output: `__dirname`/`__filename` become its directory and name, as a CommonJS script had them).
 */
export async function transformCached(file: string, source: string, cacheDir: string): Promise<string> {
  const key = createHash('sha256').update(`${TRANSFORM_VERSION}\0${file}\0`).update(source).digest('hex')
  const cached = cacheDir ? join(cacheDir, `${key}.mjs`) : ''
  if (cached) {
    try {
      return readFileSync(cached, 'utf8')
    } catch {
      /* not there yet */
    }
  }
  const { transform } = await esbuild()
  const out = await transform(source, {
    loader: extname(file) === '.tsx' ? 'tsx' : 'ts',
    format: 'esm',
    target: 'node20',
    platform: 'node',
    sourcemap: 'inline',
    sourcefile: file,
    // Only free references are replaced: a script declaring its own __dirname keeps it.
    define: { __dirname: JSON.stringify(dirname(file)), __filename: JSON.stringify(file) },
  })
  // A script written as CommonJS TypeScript (`const x = require('…')`) gets a real require, whose
  // `imagesmith` is the CLI's copy (cjs-alias.ts); on the first line, so the source map still holds.
  const code = /\brequire\b/.test(source) ? `import { createRequire as __imagesmithRequire } from 'node:module';const require = __imagesmithRequire(import.meta.url);${out.code}` : out.code
  // A cache that cannot be written (read-only, full) only costs the next run a transform.
  if (cached) await writeScriptCache(cached, code)
  return code
}

function isTypeScript(url: string | undefined): boolean {
  if (!url?.startsWith('file:')) return false
  return TS_EXTENSIONS.has(extname(new URL(url).pathname))
}

function typeScriptSibling(specifier: string, parentURL: string): string | undefined {
  if (!/^(?:\.{1,2}\/|\/|file:)/.test(specifier)) return undefined
  const base = new URL(specifier, parentURL)
  const path = fileURLToPath(base)
  const candidates = /\.m?js$/.test(path)
    ? [path.replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts'), path.replace(/\.js$/, '.tsx')]
    : [`${path}.ts`, `${path}.tsx`, `${path}.mts`, join(path, 'index.ts')]
  const hit = candidates.find((c) => c !== path && existsSync(c))
  return hit ? pathToFileURL(hit).href : undefined
}
