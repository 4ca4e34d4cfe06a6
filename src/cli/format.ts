/** `1.5GB`, `20.1MB`, `3kB`, as `docker images` prints sizes (decimal units). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n}B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n
  let u = -1
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000
    u++
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)}${units[u]}`
}

/** `5 seconds ago`, `3 hours ago`, `2 days ago`. */
export function formatAge(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  const steps: [number, string][] = [[86400 * 365, 'year'], [86400 * 30, 'month'], [86400 * 7, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute']]
  for (const [len, name] of steps) if (s >= len) return `${Math.floor(s / len)} ${name}${Math.floor(s / len) > 1 ? 's' : ''} ago`
  return `${s} second${s === 1 ? '' : 's'} ago`
}

/** `10GB`, `512MB`, `1.5g`, `2048` (bytes): decimal units as docker's --keep-storage; `GiB` binary. */
export function parseBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?$/i.exec(text.trim())
  if (!m) return undefined
  const base = m[3] ? 1024 : 1000
  const pow = ' kmgt'.indexOf((m[2] || ' ').toLowerCase())
  return Math.round(Number(m[1]) * base ** pow)
}

/** `24h`, `90m`, `30s`, `7d`, `1h30m` → milliseconds (Go durations as `--filter until=` takes, plus days). */
export function parseDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy
  let total = 0
  let end = 0
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms']
    end = re.lastIndex
  }
  return end === text.length && end > 0 ? total : undefined
}

/** `512B`, `1.5kB`, `20.1MB`, `1.25GB` (binary units, as build and inspect print sizes). */
export function formatSize(n: number): string {
  if (n < 1024) return `${n}B`
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)}kB`
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)}MB`
  return `${(n / (1 << 30)).toFixed(2)}GB`
}
