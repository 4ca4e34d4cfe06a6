/**
 * The filesystem a stack of layers makes, applied one layer at a time as a runtime would
 * (whiteouts of a layer first, against the layers below it; then its entries), keeping for each
 * path which layer wrote it. What a layer deletes or overwrites is reported as it is hidden.
 */
import type { LayerFile } from './layer-files.js'

export interface StackNode {
  readonly file: LayerFile
  /** Index of the layer that wrote this version. */
  readonly layer: number
}

/** A file version no container can see any more. */
export interface HiddenVersion {
  readonly node: StackNode
  readonly path: string
  readonly how: 'deleted' | 'overwritten'
}

export interface LayerCounts {
  added: number
  changed: number
  removed: number
}

const IMPLICIT_DIR = (path: string): LayerFile => ({ path, kind: 'dir', size: 0, mode: 0o755, uid: 0, gid: 0 })

export class LayerStack {
  readonly nodes = new Map<string, StackNode>()
  private readonly children = new Map<string, Set<string>>()

  /**
   * Applies layer `index`. `onHidden` hears every version the layer deletes or overwrites;
   * `onWhiteout` the size of what each whiteout deletes (before deleting it), for dive's figures.
   */
  apply(index: number, files: readonly LayerFile[], onHidden: (h: HiddenVersion) => void, onWhiteout?: (path: string, deletedBytes: number, wasDir: boolean) => void): LayerCounts {
    const counts: LayerCounts = { added: 0, changed: 0, removed: 0 }
    for (const f of files) {
      if (f.kind === 'whiteout') {
        const target = this.nodes.get(f.path)
        onWhiteout?.(f.path, target ? this.subtreeBytes(f.path) : 0, target?.file.kind === 'dir')
        if (target) counts.removed++
        this.remove(f.path, 'deleted', onHidden)
      } else if (f.kind === 'opaque') {
        counts.removed++
        for (const child of [...(this.children.get(f.path) ?? [])]) this.remove(child, 'deleted', onHidden)
      }
    }
    for (const f of files) {
      if (f.kind === 'whiteout' || f.kind === 'opaque') continue
      this.ensureParents(f.path, index, onHidden)
      const old = this.nodes.get(f.path)
      if (old) {
        counts.changed++
        if (old.file.kind === 'dir' && f.kind === 'dir') {
          this.nodes.set(f.path, { file: f, layer: index })
          continue
        }
        this.remove(f.path, 'overwritten', onHidden)
      } else {
        counts.added++
      }
      this.insert(f.path, { file: f, layer: index })
    }
    return counts
  }

  /** Bytes of the file at `path`, or of everything under the directory there. */
  subtreeBytes(path: string): number {
    let sum = 0
    const stack = [path]
    while (stack.length > 0) {
      const p = stack.pop()!
      sum += this.nodes.get(p)?.file.size ?? 0
      for (const c of this.children.get(p) ?? []) stack.push(c)
    }
    return sum
  }

  private ensureParents(path: string, layer: number, onHidden: (h: HiddenVersion) => void): void {
    const slash = path.lastIndexOf('/')
    if (slash < 0) return
    const parent = path.slice(0, slash)
    const p = this.nodes.get(parent)
    if (p?.file.kind === 'dir') return
    this.ensureParents(parent, layer, onHidden)
    if (p) this.remove(parent, 'overwritten', onHidden)
    this.insert(parent, { file: IMPLICIT_DIR(parent), layer })
  }

  private insert(path: string, node: StackNode): void {
    this.nodes.set(path, node)
    const slash = path.lastIndexOf('/')
    const parent = slash < 0 ? '' : path.slice(0, slash)
    let set = this.children.get(parent)
    if (!set) this.children.set(parent, (set = new Set()))
    set.add(path)
  }

  /** Removes `path` and everything under it; each regular file version goes to `onHidden`. */
  private remove(path: string, how: HiddenVersion['how'], onHidden: (h: HiddenVersion) => void): void {
    if (!this.nodes.has(path)) return
    const slash = path.lastIndexOf('/')
    this.children.get(slash < 0 ? '' : path.slice(0, slash))?.delete(path)
    const stack = [path]
    while (stack.length > 0) {
      const p = stack.pop()!
      const node = this.nodes.get(p)
      if (node) {
        this.nodes.delete(p)
        if (node.file.kind === 'file') onHidden({ node, path: p, how })
      }
      const kids = this.children.get(p)
      if (kids) {
        this.children.delete(p)
        for (const c of kids) stack.push(c)
      }
    }
  }
}
