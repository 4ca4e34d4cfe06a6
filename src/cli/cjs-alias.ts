/**
 * `require('imagesmith')` from a build script (a `.cts` script, or TypeScript that tsx runs as
 * CommonJS) must be the CLI's own copy too, as the ESM hooks make `import` (script-hooks.ts): else
 * it loads the package's CommonJS build (or fails where the script's folder has no imagesmith),
 * a second copy of the library in the same process (+40 MB) whose builders are other classes.
 * Node 20.19+ can require() an ES module that has no top-level await, so the CommonJS request is
 * pointed at the very ES module file the CLI imported, and both share one instance.
 */
import Module from 'node:module'

type ResolveFilename = (request: string, parent: unknown, isMain: boolean, options?: unknown) => string

let installed: Readonly<Record<string, string>> | undefined

/** Maps bare CommonJS requests (`imagesmith`, `imagesmith/codegen`) to the given ES module files; once per process. */
export function aliasCommonJs(files: Readonly<Record<string, string>>): void {
  if (installed) return
  installed = files
  const M = Module as unknown as { _resolveFilename: ResolveFilename }
  const previous = M._resolveFilename
  M._resolveFilename = function (this: unknown, request, parent, isMain, options) {
    return files[request] ?? previous.call(this, request, parent, isMain, options)
  }
}
