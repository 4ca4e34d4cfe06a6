/** One `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export interface Challenge {
  readonly scheme: 'bearer' | 'basic'
  readonly params: Readonly<Record<string, string>>
}

/**
 * Parses the header as RFC 7235 writes it (quoted strings with backslash escapes). Only Bearer and
 * Basic are understood; the first of those wins, as in distribution's client.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = []
  for (const h of Array.isArray(header) ? header : header ? [header] : []) {
    const re = /\s*([A-Za-z][\w-]*)\s+((?:[\w-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?\s*)*)/g
    for (let m = re.exec(h); m; m = re.exec(h)) {
      const scheme = m[1]!.toLowerCase()
      const params: Record<string, string> = {}
      const pre = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g
      for (let p = pre.exec(m[2]!); p; p = pre.exec(m[2]!)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!
      if (scheme === 'bearer' || scheme === 'basic') out.push({ scheme, params })
      if (m[0] === '') re.lastIndex++
    }
  }
  return out
}
