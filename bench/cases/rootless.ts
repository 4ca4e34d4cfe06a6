// Rootless vs root (bench/rootless.ts): npm run bench -- rootless
export { default } from '../rootless.js'
