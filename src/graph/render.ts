import type { AnyVertex, Graph } from './node.js'

const short = (v: AnyVertex) => `v${v.id.slice(7, 19)}`

function label(v: AnyVertex): string {
  const d = v.meta.description
  return d.length > 60 ? `${d.slice(0, 57)}...` : d
}

/** The graph as a Mermaid flowchart (inputs point at the vertices that use them). */
export function toMermaid(graph: Graph): string {
  const lines = ['flowchart TD']
  for (const v of graph.vertices) {
    const text = label(v).replace(/"/g, '#quot;')
    lines.push(`  ${short(v)}["${text}"]`)
  }
  for (const v of graph.vertices) for (const i of v.inputs) lines.push(`  v${i.slice(7, 19)} --> ${short(v)}`)
  return `${lines.join('\n')}\n`
}

/** The graph as Graphviz DOT. */
export function toDot(graph: Graph): string {
  const lines = ['digraph imagesmith {', '  rankdir=TB;', '  node [shape=box, fontname="monospace"];']
  const outputs = new Set(graph.outputs.map((o) => o.vertex))
  for (const v of graph.vertices) {
    const attrs = outputs.has(v.id) ? ', style=bold' : ''
    lines.push(`  ${short(v)} [label=${JSON.stringify(label(v))}${attrs}];`)
  }
  for (const v of graph.vertices) for (const i of v.inputs) lines.push(`  v${i.slice(7, 19)} -> ${short(v)};`)
  lines.push('}')
  return `${lines.join('\n')}\n`
}
