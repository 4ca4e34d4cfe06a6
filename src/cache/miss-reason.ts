/**
 * Why a step missed the cache: the key document it had last time in this store against the one it
 * has now, as one short line (BuildKit shows nothing of the kind; `docker build` users ask it most).
 */
import type { CacheKeyDoc } from '../solver/types.js'
import { canonicalJson } from '../util/canonical-json.js'
import type { InputName } from '../graph/node.js'

/** Context path → a short digest of what lands in the layer for it (type, mode, owner, mtime, content). */
export type FileMap = Readonly<Record<string, string>>

/** Above this many entries a copy keeps no per-file map: the reason then gives only that content changed. */
export const FILE_MAP_LIMIT = 50_000

/** Paths named in a reason; the rest are counted. */
const SHOWN = 3

export function explainMiss(
  prev: CacheKeyDoc | undefined,
  cur: CacheKeyDoc,
  prevFiles: FileMap | undefined,
  curFiles: FileMap | undefined,
  sameKey: boolean,
  argNames: readonly string[] = [],
  inputs: readonly InputName[] = [],
): string {
  if (!prev) return sameKey ? 'the cached layer is gone from the store' : 'first build of this step'
  const parts: string[] = []
  for (const field of new Set([...Object.keys(prev), ...Object.keys(cur)])) {
    const a = prev[field]
    const b = cur[field]
    if (canonicalJson(a ?? null) === canonicalJson(b ?? null)) continue
    parts.push(describeField(field, a, b, prevFiles, curFiles, argNames, inputs))
  }
  if (parts.length === 0) return 'the cached layer is gone from the store'
  return parts.join('; ')
}

function describeField(field: string, a: unknown, b: unknown, prevFiles: FileMap | undefined, curFiles: FileMap | undefined, argNames: readonly string[], inputs: readonly InputName[]): string {
  switch (field) {
    case 'content':
      return prevFiles && curFiles ? filesChanged(prevFiles, curFiles) : 'context files changed'
    case 'env': {
      // A RUN's env holds the ARGs in scope as well: those are named as ARGs.
      const names = namesChanged(pairs(a), pairs(b))
      const isArg = (n: string) => argNames.includes(n.replace(/^[+-]/, ''))
      const args = names.filter(isArg)
      const env = names.filter((n) => !isArg(n))
      return [...(args.length > 0 ? [`ARG changed: ${args.join(', ')}`] : []), ...(env.length > 0 ? [`env changed: ${env.join(', ')}`] : [])].join('; ')
    }
    case 'args':
      return `ARG changed: ${namesChanged(pairs(a), pairs(b)).join(', ')}`
    case 'layers':
      return parentChanged(a, b, inputs)
    case 'from':
      // A COPY --from reads inputs[1]: the stage (or image) it names.
      return inputs[0] ? `source ${inputs[0].kind} ${inputs[0].name} changed` : 'source stage changed'
    default:
      return `${field} changed`
  }
}

function filesChanged(prev: FileMap, cur: FileMap): string {
  const changed: string[] = []
  for (const [p, d] of Object.entries(cur)) if (prev[p] !== d) changed.push(p)
  for (const p of Object.keys(prev)) if (!(p in cur)) changed.push(p)
  changed.sort()
  if (changed.length === 0) return 'context files changed'
  const shown = changed.slice(0, SHOWN).join(', ')
  const more = changed.length > SHOWN ? ` and ${changed.length - SHOWN} more` : ''
  return `${changed.length} context file${changed.length === 1 ? '' : 's'} changed: ${shown}${more}`
}

/** `K=V` lists or `{ name, value }` lists → name → value. */
function pairs(v: unknown): Map<string, string> {
  const m = new Map<string, string>()
  if (!Array.isArray(v)) return m
  for (const item of v) {
    if (typeof item === 'string') {
      const i = item.indexOf('=')
      m.set(i < 0 ? item : item.slice(0, i), i < 0 ? '' : item.slice(i + 1))
    } else if (item && typeof item === 'object' && 'name' in item) {
      const o = item as { name: string; value?: unknown }
      m.set(o.name, canonicalJson(o.value ?? null))
    }
  }
  return m
}

function namesChanged(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = []
  for (const [k, v] of b) if (a.get(k) !== v) out.push(a.has(k) ? k : `+${k}`)
  for (const k of a.keys()) if (!b.has(k)) out.push(`-${k}`)
  return out.length > 0 ? out : ['(order)']
}

function parentChanged(a: unknown, b: unknown, inputs: readonly InputName[]): string {
  const pa = (Array.isArray(a) ? a[0] : undefined) as string[] | undefined
  const pb = (Array.isArray(b) ? b[0] : undefined) as string[] | undefined
  if (!Array.isArray(pa) || !Array.isArray(pb)) return 'parent changed'
  let i = 0
  while (i < pa.length && i < pb.length && pa[i] === pb[i]) i++
  if (i === pa.length && i === pb.length) {
    // Layers of input n (n ≥ 1: a RUN's bind mount from a stage) are `layers[n]`, named by inputs[n - 1].
    const la = a as unknown[]
    const lb = b as unknown[]
    const n = lb.findIndex((l, k) => k > 0 && canonicalJson(l ?? null) !== canonicalJson(la[k] ?? null))
    const named = n > 0 ? inputs[n - 1] : undefined
    return named ? `mounted ${named.kind} ${named.name} changed` : 'a mounted stage changed'
  }
  if (i === 0) return 'base image changed (its first layer differs)'
  const layer = pb[pb.length - 1]
  return `parent changed (layer ${layer ? layer.slice(0, 19) : 'removed'}; layers differ from #${i + 1})`
}
