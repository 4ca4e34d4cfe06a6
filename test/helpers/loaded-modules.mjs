// Imports the module named by argv[2] and prints how long that took and whether ts-morph was loaded (CJS modules land in require.cache).
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const t0 = performance.now()
await import(process.argv[2])
const ms = performance.now() - t0
const loaded = Object.keys(require.cache).filter((k) => k.includes('/node_modules/ts-morph/') || k.includes('/node_modules/typescript/'))
console.log(JSON.stringify({ ms: Math.round(ms), tsMorph: loaded.length }))
