/**
 * `imagesmith/codegen`: Dockerfile → TypeScript. A separate entry point because it loads ts-morph
 * (and the TypeScript compiler with it), which `import { image } from 'imagesmith'` and the CLI's
 * build path never need.
 */
export { generateModule, type GenerateInput } from './generate.js'
export { convertDockerfile, type ConvertOptions } from './convert.js'
