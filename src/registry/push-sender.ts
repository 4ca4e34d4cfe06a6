import type { RegistryClient } from './client.js'
import { readBody } from './transport.js'
import type { PushRequest, PushResponse, PushSender } from './upload.js'

/**
 * The push side's view of the shared client: requests go to the registry itself (mirrors serve
 * pulls only), authorized for the scopes each request names, through the client's retries.
 */
export function pushSender(client: RegistryClient, registry: string): PushSender {
  const ep = client.originEndpoint(registry)
  return {
    async send(req: PushRequest): Promise<PushResponse> {
      const repository = /^\/v2\/(.+?)\/(?:blobs|manifests)\//.exec(req.url.startsWith('/') ? req.url : new URL(req.url).pathname)?.[1] ?? ''
      const base = { method: req.method, headers: req.headers, body: req.body, signal: req.signal, followRedirects: req.method === 'HEAD' || req.method === 'GET' }
      const target = req.url.startsWith('/') ? { path: req.url } : { url: req.url }
      const res = await client.request(ep, req.scopes, { ...base, ...target }, { repository, what: req.url.includes('/manifests/') ? 'manifest' : 'upload' })
      let consumed = false
      return {
        status: res.status,
        headers: res.headers,
        url: res.url,
        async text(max = 64 << 10) {
          if (consumed) return ''
          consumed = true
          if (max === 0 || req.method === 'HEAD') {
            res.body.resume()
            return ''
          }
          return (await readBody(res, Math.max(max, 1 << 20))).toString('utf8').slice(0, max)
        },
      }
    },
    redact: (s) => client.auth.redact(s),
  }
}
