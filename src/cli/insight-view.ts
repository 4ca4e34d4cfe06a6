/** The text views of `inspect --layers` and `diff`. */
import type { ImageInsight } from '../insight/analyze.js'
import type { ImageDiff } from '../insight/image-diff.js'
import type { RuleResult } from './dive-ci.js'
import { formatBytes } from './format.js'

/** Longest step text shown in the table (the JSON has it whole). */
const STEP_WIDTH = 60
/** Hidden paths listed in the text view (the JSON lists all). */
const WASTED_SHOWN = 10

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12)
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s)
const step = (s: string | undefined) => clip((s ?? '(unknown step)').replace(/\s+/g, ' ').replace(/ # buildkit$/, ''), STEP_WIDTH)

export function layersTable(insight: ImageInsight): string {
  const rows = [['#', 'DIGEST', 'COMPRESSED', 'SIZE', 'ADDED', 'CHANGED', 'REMOVED', 'STEP']]
  for (const l of insight.layers) {
    rows.push([String(l.index), short(l.digest), formatBytes(l.compressedSize), formatBytes(l.uncompressedSize), String(l.added), String(l.changed), String(l.removed), step(l.step)])
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  let out = ''
  for (const [i, r] of rows.entries()) {
    out += `${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}\n`
    const l = i > 0 ? insight.layers[i - 1] : undefined
    if (l && l.largest.length > 0) out += `${' '.repeat(widths[0]! + 2)}largest: ${l.largest.map((p) => `/${p.path} ${formatBytes(p.size)}`).join(', ')}\n`
  }
  out += `Total:       ${formatBytes(insight.compressedSize)} compressed, ${formatBytes(insight.uncompressedSize)} uncompressed, ${insight.layers.length} layers\n`
  out += `Wasted:      ${formatBytes(insight.wastedBytes)} in ${insight.wasted.length} file version${insight.wasted.length === 1 ? '' : 's'} a later layer deletes or overwrites\n`
  for (const w of insight.wasted.slice(0, WASTED_SHOWN)) {
    out += `  ${formatBytes(w.size).padStart(8)}  /${w.path}: added by layer ${w.addedBy.layer} (${step(w.addedBy.step)}), ${w.how} by layer ${w.hiddenBy.layer} (${step(w.hiddenBy.step)})\n`
  }
  if (insight.wasted.length > WASTED_SHOWN) out += `  … ${insight.wasted.length - WASTED_SHOWN} more (--format json lists all)\n`
  const d = insight.dive
  out += `Efficiency:  ${(d.efficiency * 100).toFixed(2)}% (dive's: wasted ${formatBytes(d.wastedBytes)}, user wasted ${(d.userWastedPercent * 100).toFixed(2)}%)\n`
  return out
}

export function rulesText(results: readonly RuleResult[]): string {
  return results.map((r) => `  ${r.passed ? 'PASS' : 'FAIL'}: ${r.rule}: ${r.rule === 'highestWastedBytes' ? `${formatBytes(r.actual)} (limit ${formatBytes(r.threshold)})` : `${r.actual.toFixed(4)} (limit ${r.threshold})`}\n`).join('')
}

export function diffText(d: ImageDiff): string {
  let out = ''
  for (const a of d.added) out += `+ /${a.path}  ${a.kind}${a.kind === 'file' ? ` ${formatBytes(a.size)}` : ''}\n`
  for (const r of d.removed) out += `- /${r.path}  ${r.kind}${r.kind === 'file' ? ` ${formatBytes(r.size)}` : ''}\n`
  for (const c of d.changed) {
    const what = Object.entries(c.changes).map(([k, v]) => (v === true ? k : `${k} ${(v as readonly unknown[])[0]} -> ${(v as readonly unknown[])[1]}`))
    out += `~ /${c.path}  ${what.join(', ')}\n`
  }
  out += `${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed\n`
  return out
}
