/**
 * The fast path for the usual build script: one TypeScript file that imports only `imagesmith` (or
 * the checkout's own entry) and node builtins. It is compiled once per content to a module whose
 * `imagesmith` import is the CLI's own entry URL and whose `import.meta.url`/`dirname`/`filename`
 * and `__dirname`/`__filename` are the script's, kept in the cache dir and imported from there: no
 * module hooks (their loader thread costs ~45 ms per process). Anything else (relative or package
 * imports, dynamic import(), require, other import.meta uses) says so once per content, and the
 * CLI loads that script through the hooks (script-hooks.ts) instead.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { esbuild } from './esbuild-service.js'
import { writeScriptCache } from './script-cache.js'

const VERSION = 'direct-esbuild-esm-node20-v2'
const BUILTINS = new Set(builtinModules)
/** What only the hooks can serve faithfully; seen in the text, a false alarm only costs the hooks' start. */
const NEEDS_HOOKS = /\bimport\s*\(|\brequire\b|import\.meta(?!\.(?:url|dirname|filename)\b)/

/**
 * The URL of the compiled module for `file`, or undefined when the script needs the hooks.
 * `aliases` maps specifiers and resolved file URLs to the CLI's entries (as the hooks do).
 */
export async function directScript(file: string, cacheDir: string, aliases: Readonly<Record<string, string>>): Promise<string | undefined> {
  const source = readFileSync(file, 'utf8')
  if (NEEDS_HOOKS.test(source) || !cacheDir) return undefined
  const key = createHash('sha256').update(`${VERSION}\0${file}\0${JSON.stringify(aliases)}\0`).update(source).digest('hex')
  const out = join(cacheDir, `${key}.mjs`)
  const refused = join(cacheDir, `${key}.needs-hooks`)
  if (existsSync(out)) return pathToFileURL(out).href
  if (existsSync(refused)) return undefined
  const code = await compile(file, source, aliases, out)
  // No cache (read-only, full): the hooks serve this run.
  if (!(await writeScriptCache(code === undefined ? refused : out, code ?? ''))) return undefined
  return code === undefined ? undefined : pathToFileURL(out).href
}

async function compile(file: string, source: string, aliases: Readonly<Record<string, string>>, outfile: string): Promise<string | undefined> {
  const { build } = await esbuild()
  let selfContained = true
  const url = pathToFileURL(file).href
  const result = await build({
    stdin: { contents: source, loader: file.endsWith('.tsx') ? 'tsx' : 'ts', sourcefile: file, resolveDir: dirname(file) },
    bundle: true,
    write: false,
    // The source map names the script relative to where the module is kept: stack traces then show the script's path.
    outfile,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'silent',
    define: {
      'import.meta.url': JSON.stringify(url),
      'import.meta.dirname': JSON.stringify(dirname(file)),
      'import.meta.filename': JSON.stringify(file),
      // Only free references are replaced: a script declaring its own __dirname keeps it.
      __dirname: JSON.stringify(dirname(file)),
      __filename: JSON.stringify(file),
    },
    plugins: [{
      name: 'imagesmith-direct',
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) => {
          const spec = args.path
          if (aliases[spec]) return { path: aliases[spec], external: true }
          if (spec.startsWith('/')) {
            const alias = aliases[pathToFileURL(spec).href]
            if (alias) return { path: alias, external: true }
          }
          if (spec.startsWith('node:') || BUILTINS.has(spec)) return { path: spec, external: true }
          selfContained = false
          return { path: spec, external: true }
        })
      },
    }],
  })
  return selfContained ? result.outputFiles[0]!.text : undefined
}
