import { defineConfig } from 'tsup'

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    codegen: 'src/codegen/index.ts',
    cli: 'src/cli/main.ts',
    // rootless-worker: the process a plain user's build runs its steps in (src/rootless/namespace.ts starts it beside the bundle).
    'rootless-worker': 'src/rootless/worker.ts',
    // script-hooks: module hooks that load TypeScript build scripts (src/cli/load-script.ts registers them from beside the bundle).
    'script-hooks': 'src/cli/script-hooks.ts',
    // early-probe: the launcher (bin/imagesmith.js) starts a build's context listing from it before the CLI bundle loads.
    'early-probe': 'src/cli/early-probe.ts',
  },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts', codegen: 'src/codegen/index.ts' } },
  clean: true,
  sourcemap: true,
  target: 'node20',
  // import.meta.url in the CJS build (the CLI's script loader and version lookup use it).
  shims: true,
  // p-queue 9 is ESM-only: bundling it keeps require('imagesmith') working.
  noExternal: ['p-queue'],
})
