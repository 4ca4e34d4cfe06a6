/**
 * What each layer of an image holds and what it wastes: per layer counts and largest paths, the
 * file versions later layers hide (`wastedBytes`, each with the step that added it and the one
 * that hid it), and dive's figures by dive's own definitions so that a `.dive-ci` means the same.
 */
import type { LayerFile } from './layer-files.js'
import { LayerStack, type HiddenVersion } from './layer-stack.js'

export interface LayerInput {
  readonly digest: string
  readonly mediaType: string
  /** Bytes of the blob as shipped. */
  readonly compressedSize: number
  /** Bytes of the uncompressed tar. */
  readonly tarBytes: number
  /** The history `created_by` of the step that made the layer, if the config says. */
  readonly step?: string
  readonly files: readonly LayerFile[]
}

export interface PathSize {
  readonly path: string
  readonly size: number
}

export interface LayerInsight {
  readonly index: number
  readonly digest: string
  readonly mediaType: string
  readonly compressedSize: number
  readonly uncompressedSize: number
  /** Σ file sizes of the layer's entries (dive's layer size). */
  readonly fileBytes: number
  readonly step?: string
  readonly added: number
  readonly changed: number
  readonly removed: number
  readonly largest: readonly PathSize[]
}

/** A file version shipped in a layer that no container sees: a later layer deleted or overwrote it. */
export interface WastedPath {
  readonly path: string
  readonly size: number
  readonly how: 'deleted' | 'overwritten'
  readonly addedBy: { readonly layer: number; readonly step?: string }
  readonly hiddenBy: { readonly layer: number; readonly step?: string }
}

/** dive's figures (`dive/filetree/efficiency.go`, `dive/image/analysis.go`). */
export interface DiveFigures {
  /** Σ over paths of the smallest size seen / Σ of every size seen (1 when nothing was seen). */
  readonly efficiency: number
  /** Σ of every size of each path seen in two or more layers, the first copy included. */
  readonly wastedBytes: number
  /** Σ of dive's layer sizes of every layer but the first. */
  readonly userSizeBytes: number
  /** wastedBytes / userSizeBytes (0 when there are no user bytes; dive divides anyway). */
  readonly userWastedPercent: number
  /** The paths behind wastedBytes, largest first. */
  readonly inefficient: readonly { readonly path: string; readonly count: number; readonly sizeBytes: number }[]
}

export interface ImageInsight {
  readonly layers: readonly LayerInsight[]
  readonly compressedSize: number
  readonly uncompressedSize: number
  /** Bytes of file versions hidden by a later layer. */
  readonly wastedBytes: number
  /** Every hidden version, largest first. */
  readonly wasted: readonly WastedPath[]
  readonly dive: DiveFigures
}

/** Largest paths listed per layer. */
export const LARGEST_PER_LAYER = 5

/** Steps of `history` that made a layer, in layer order (empty_layer entries make none). */
export function layerSteps(history: readonly { created_by?: string; empty_layer?: boolean }[] | undefined, layers: number): (string | undefined)[] {
  const made = (history ?? []).filter((h) => h.empty_layer !== true)
  // A history that does not match the layers one to one names nothing rather than the wrong step.
  if (made.length !== layers) return Array.from({ length: layers }, () => undefined)
  return made.map((h) => h.created_by)
}

export function analyzeLayers(layers: readonly LayerInput[]): ImageInsight {
  const stack = new LayerStack()
  const wasted: WastedPath[] = []
  const perPath = new Map<string, { count: number; total: number; min: number }>()
  const see = (path: string, size: number) => {
    const d = perPath.get(path)
    if (!d) perPath.set(path, { count: 1, total: size, min: size })
    else {
      d.count++
      d.total += size
      if (size < d.min) d.min = size
    }
  }
  const out: LayerInsight[] = []
  let userSizeBytes = 0
  for (const [index, layer] of layers.entries()) {
    const whiteoutBytes = new Map<string, number>()
    const onHidden = (h: HiddenVersion) => {
      if (h.node.file.size === 0) return
      wasted.push({
        path: h.path, size: h.node.file.size, how: h.how,
        addedBy: { layer: h.node.layer, ...stepOf(layers[h.node.layer]) },
        hiddenBy: { layer: index, ...stepOf(layer) },
      })
    }
    // dive sizes a whiteout by what it deletes only when that is a directory (efficiency.go).
    const counts = stack.apply(index, layer.files, onHidden, (path, bytes, wasDir) => whiteoutBytes.set(path, wasDir ? bytes : 0))
    for (const [path, size] of diveLeaves(layer.files, whiteoutBytes)) see(path, size)
    const fileBytes = layer.files.reduce((s, f) => s + (f.kind === 'file' ? f.size : 0), 0)
    if (index > 0) userSizeBytes += fileBytes
    out.push({
      index, digest: layer.digest, mediaType: layer.mediaType, compressedSize: layer.compressedSize, uncompressedSize: layer.tarBytes, fileBytes,
      ...stepOf(layer), ...counts, largest: largest(layer.files),
    })
  }
  let minSum = 0
  let totalSum = 0
  let diveWasted = 0
  const inefficient: DiveFigures['inefficient'][number][] = []
  for (const [path, d] of perPath) {
    minSum += d.min
    totalSum += d.total
    if (d.count >= 2) {
      diveWasted += d.total
      inefficient.push({ path, count: d.count, sizeBytes: d.total })
    }
  }
  inefficient.sort((a, b) => b.sizeBytes - a.sizeBytes || (a.path < b.path ? -1 : 1))
  wasted.sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1))
  return {
    layers: out,
    compressedSize: out.reduce((s, l) => s + l.compressedSize, 0),
    uncompressedSize: out.reduce((s, l) => s + l.uncompressedSize, 0),
    wastedBytes: wasted.reduce((s, w) => s + w.size, 0),
    wasted,
    dive: {
      efficiency: totalSum === 0 ? 1 : minSum / totalSum,
      wastedBytes: diveWasted,
      userSizeBytes,
      userWastedPercent: userSizeBytes === 0 ? 0 : diveWasted / userSizeBytes,
      inefficient,
    },
  }
}

function stepOf(layer: LayerInput | undefined): { step?: string } {
  return layer?.step !== undefined ? { step: layer.step } : {}
}

/**
 * The leaves of a layer's own tree as dive builds it (entries and the directories above them;
 * a whiteout is a node at the path it deletes; opaque markers are dropped), with dive's size.
 */
function diveLeaves(files: readonly LayerFile[], whiteoutBytes: ReadonlyMap<string, number>): Map<string, number> {
  const parents = new Set<string>()
  for (const f of files) {
    if (f.kind === 'opaque') continue
    for (let p = f.path, s = p.lastIndexOf('/'); s > 0; p = p.slice(0, s), s = p.lastIndexOf('/')) {
      const parent = p.slice(0, s)
      if (parents.has(parent)) break
      parents.add(parent)
    }
  }
  const leaves = new Map<string, number>()
  for (const f of files) {
    if (f.kind === 'opaque' || parents.has(f.path)) continue
    leaves.set(f.path, f.kind === 'whiteout' ? whiteoutBytes.get(f.path) ?? 0 : f.kind === 'file' ? f.size : 0)
  }
  return leaves
}

function largest(files: readonly LayerFile[]): PathSize[] {
  const top: PathSize[] = []
  for (const f of files) {
    if (f.kind !== 'file' || f.size === 0) continue
    if (top.length === LARGEST_PER_LAYER && f.size <= top[top.length - 1]!.size) continue
    top.push({ path: f.path, size: f.size })
    top.sort((a, b) => b.size - a.size)
    if (top.length > LARGEST_PER_LAYER) top.pop()
  }
  return top
}
