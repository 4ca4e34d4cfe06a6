/**
 * Node's http, https and tls, loaded on first use: importing them was ~5 ms of every CLI start, and a
 * build whose bases are all local (or a no-op rebuild) never opens a connection.
 */
import { createRequire } from 'node:module'

const load = createRequire(import.meta.url)
let http: typeof import('node:http') | undefined
let https: typeof import('node:https') | undefined
let tls: typeof import('node:tls') | undefined

export const nodeHttp = (): typeof import('node:http') => (http ??= load('node:http') as typeof import('node:http'))
export const nodeHttps = (): typeof import('node:https') => (https ??= load('node:https') as typeof import('node:https'))
export const nodeTls = (): typeof import('node:tls') => (tls ??= load('node:tls') as typeof import('node:tls'))
