/**
 * What changed between two images' final filesystems (whiteouts applied): paths added, removed,
 * and changed in content (body digest, link target, kind) or metadata (size, mode, owner).
 * Modification times are not compared: a rebuild moves them without changing anything a user sees.
 */
import type { LayerInput } from './analyze.js'
import type { LayerFile, LayerFileKind } from './layer-files.js'
import { LayerStack } from './layer-stack.js'

export interface DiffPath {
  readonly path: string
  readonly kind: LayerFileKind
  readonly size: number
}

export interface ChangedPath {
  readonly path: string
  /** Each field that differs, as [before, after]; `content` when the bodies differ at equal size. */
  readonly changes: {
    readonly kind?: readonly [LayerFileKind, LayerFileKind]
    readonly size?: readonly [number, number]
    readonly mode?: readonly [string, string]
    readonly uid?: readonly [number, number]
    readonly gid?: readonly [number, number]
    readonly link?: readonly [string, string]
    readonly content?: true
  }
}

export interface ImageDiff {
  readonly added: readonly DiffPath[]
  readonly removed: readonly DiffPath[]
  readonly changed: readonly ChangedPath[]
}

/** The final filesystem of a layer stack: path → the version a container sees. */
export function finalFiles(layers: readonly LayerInput[]): Map<string, LayerFile> {
  const stack = new LayerStack()
  for (const [i, l] of layers.entries()) stack.apply(i, l.files, () => {})
  return new Map([...stack.nodes].map(([p, n]) => [p, n.file]))
}

export function diffFiles(a: ReadonlyMap<string, LayerFile>, b: ReadonlyMap<string, LayerFile>): ImageDiff {
  const added: DiffPath[] = []
  const removed: DiffPath[] = []
  const changed: ChangedPath[] = []
  const brief = (f: LayerFile): DiffPath => ({ path: f.path, kind: f.kind, size: f.size })
  for (const [path, fa] of a) {
    const fb = b.get(path)
    if (!fb) {
      removed.push(brief(fa))
      continue
    }
    const c: { -readonly [K in keyof ChangedPath['changes']]: ChangedPath['changes'][K] } = {}
    if (fa.kind !== fb.kind) c.kind = [fa.kind, fb.kind]
    if (fa.size !== fb.size) c.size = [fa.size, fb.size]
    if (fa.mode !== fb.mode) c.mode = [octal(fa.mode), octal(fb.mode)]
    if (fa.uid !== fb.uid) c.uid = [fa.uid, fb.uid]
    if (fa.gid !== fb.gid) c.gid = [fa.gid, fb.gid]
    if ((fa.link ?? '') !== (fb.link ?? '')) c.link = [fa.link ?? '', fb.link ?? '']
    if (fa.kind === 'file' && fb.kind === 'file' && fa.size === fb.size && fa.sha256 !== fb.sha256) c.content = true
    if (Object.keys(c).length > 0) changed.push({ path, changes: c })
  }
  for (const [path, fb] of b) if (!a.has(path)) added.push(brief(fb))
  const byPath = (x: { path: string }, y: { path: string }) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0)
  return { added: added.sort(byPath), removed: removed.sort(byPath), changed: changed.sort(byPath) }
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`
