/**
 * CommonJS build scripts (`.cts`, and `require()` in any script) run in Node's own CommonJS loader,
 * with two additions made once per process:
 * - `require('imagesmith')` (and `imagesmith/codegen`) is the CLI's own copy, as the ESM hooks make
 *   `import` (script-hooks.ts). Else it loads the package's CommonJS build, or fails where the
 *   script's folder has no imagesmith: a second copy of the library in the process (+85 MB measured
 *   for a `.cts` script through tsx) whose builders are other classes. Node 20.19+ require()s an ES
 *   module without top-level await, so the request is pointed at the very ES module file the CLI
 *   imported and both share one instance.
 * - `.ts`/`.cts`/`.tsx` files required from a script are compiled by esbuild (to CommonJS, kept per
 *   content in the cache dir like the ESM transform).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import Module from 'node:module'
import { dirname, extname, join } from 'node:path'
import { writeScriptCacheSync } from './script-cache.js'

type ResolveFilename = (request: string, parent: unknown, isMain: boolean, options?: unknown) => string
interface CjsModule {
  exports: unknown
  filename: string
  paths: string[]
  loaded: boolean
  _compile(code: string, filename: string): void
}
interface ModuleStatics {
  _resolveFilename: ResolveFilename
  _extensions: Record<string, (m: CjsModule, filename: string) => void>
  _nodeModulePaths(dir: string): string[]
  new (id: string, parent?: unknown): CjsModule
}

/** Bump when the transform's options change: it is part of every cache key. */
const TRANSFORM_VERSION = 'esbuild-cjs-node20-v1'
const M = Module as unknown as ModuleStatics
let installed = false
let scriptsDir = ''

/** Maps bare CommonJS requests to the given ES module files and compiles required TypeScript; once per process. */
export function aliasCommonJs(files: Readonly<Record<string, string>>, cacheDir: string): void {
  if (installed) return
  installed = true
  scriptsDir = cacheDir
  const previous = M._resolveFilename
  M._resolveFilename = function (this: unknown, request, parent, isMain, options) {
    return files[request] ?? previous.call(this, request, parent, isMain, options)
  }
  for (const ext of ['.ts', '.cts', '.tsx']) {
    M._extensions[ext] = (m, filename) => m._compile(transformSync(filename, readFileSync(filename, 'utf8')), filename)
  }
}

/** Loads a CommonJS TypeScript script; its exports as a module namespace (`default` = `module.exports` without one). */
export function importCommonJsScript(file: string): Record<string, unknown> {
  const m = new M(file, null)
  m.filename = file
  m.paths = M._nodeModulePaths(dirname(file))
  m._compile(transformSync(file, readFileSync(file, 'utf8')), file)
  m.loaded = true
  const ex = m.exports as Record<string, unknown> | undefined
  return ex && typeof ex === 'object' && 'default' in ex ? ex : { default: ex }
}

/** esbuild's TypeScript → CommonJS transform, cached by path and content (sync: require() is). */
function transformSync(file: string, source: string): string {
  const key = createHash('sha256').update(`${TRANSFORM_VERSION}\0${file}\0`).update(source).digest('hex')
  const cached = scriptsDir ? join(scriptsDir, `${key}.cjs`) : ''
  if (cached) {
    try {
      return readFileSync(cached, 'utf8')
    } catch {
      /* not there yet */
    }
  }
  // The sync API runs esbuild as a child per call and leaves no service behind.
  const esbuild = Module.createRequire(import.meta.url)('esbuild') as typeof import('esbuild')
  const out = esbuild.transformSync(source, {
    loader: extname(file) === '.tsx' ? 'tsx' : 'ts',
    format: 'cjs',
    target: 'node20',
    platform: 'node',
    sourcemap: 'inline',
    sourcefile: file,
  })
  if (cached) writeScriptCacheSync(cached, out.code)
  return out.code
}
