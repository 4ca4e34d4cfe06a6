/**
 * Reads single paths (e.g. /etc/passwd, or the directories on a COPY destination) out of an
 * image's layers without unpacking them: each layer blob is streamed through node-tar's parser,
 * top layer first, and the scan stops as soon as every wanted path is settled. Whiteouts (`.wh.x`)
 * and opaque directories (`.wh..wh..opq`) of upper layers hide what lower layers hold. Paths are
 * resolved with the image root as '/', so nothing outside the image is ever looked at.
 *
 * Results are pure functions of the (immutable) layer digests and the wanted paths, so they are
 * memoised on disk under `<store>/image-lookups/`.
 */
import { promises as fsp } from 'node:fs'
import { posix } from 'node:path'
import type { Readable } from 'node:stream'
import { createRequire } from 'node:module'
import type { ReadEntry } from 'tar'
import { abortError, throwIfAborted } from '../errors.js'
import type { LayerRef } from '../oci/types.js'
import { writeFileAtomic } from '../store/atomic-write.js'
import type { Store } from '../store/store.js'
import { digestOf } from '../util/canonical-json.js'
import { subStep } from '../util/progress-scope.js'

/** node-tar is loaded on the first image file read, not at module load (~8 ms of every CLI start). */
let tarLoaded: typeof import('tar') | undefined
const tar = (): typeof import('tar') => (tarLoaded ??= createRequire(import.meta.url)('tar') as typeof import('tar'))


export interface ImageNode {
  readonly type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other'
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly linkname?: string
  /** The file's bytes, when they were asked for (files up to {@link MAX_DATA} bytes). */
  readonly data?: Buffer
}

/** Bodies larger than this are never held in memory (/etc/passwd is a few KiB). */
const MAX_DATA = 16 << 20
const MAX_LINKS = 40

/** 'a/b' from '/a/b/', './a/b', 'a//b'; '' for the root. */
export function imagePath(p: string): string {
  const c = posix.normalize(`/${p}`)
  return c === '/' ? '' : c.replace(/^\/+/, '').replace(/\/+$/, '')
}

function typeOf(e: ReadEntry): ImageNode['type'] {
  switch (e.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return 'file'
    case 'Directory':
      return 'dir'
    case 'SymbolicLink':
      return 'symlink'
    case 'Link':
      return 'hardlink'
    default:
      return 'other'
  }
}

function parseStream(stream: Readable, onEntry: (e: ReadEntry) => void, signal: AbortSignal | undefined): { done: Promise<void>; stop: () => void } {
  const parser = new (tar().Parser)({ onReadEntry: onEntry })
  let settle!: (e?: unknown) => void
  const done = new Promise<void>((resolve, reject) => {
    let settled = false
    const onAbort = (): void => settle(abortError(signal!))
    settle = (e?: unknown): void => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      if (e !== undefined) {
        stream.unpipe()
        stream.destroy()
        reject(e)
      } else resolve()
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    parser.on('end', () => settle())
    parser.on('error', (e: unknown) => settle(e ?? new Error('tar parse error')))
    stream.on('error', (e) => settle(e))
    stream.pipe(parser as unknown as NodeJS.WritableStream)
  })
  return {
    done,
    // Stopping early is a success: unhook the parser first so no late error or entry reaches us.
    stop: () => {
      stream.unpipe()
      settle()
      stream.removeAllListeners('error')
      stream.on('error', () => {})
      stream.destroy()
    },
  }
}

/**
 * The top-most visible entry for each of `paths` (image paths, see {@link imagePath}) in the
 * merged view of `layers`, or null when the path does not exist there. Parent symlinks are not
 * followed here: see {@link resolveImagePath}.
 */
export async function lookupImagePaths(
  store: Store,
  layers: readonly LayerRef[],
  paths: readonly string[],
  opts: { readonly withData?: readonly string[]; readonly signal?: AbortSignal } = {},
): Promise<Map<string, ImageNode | null>> {
  const wanted = [...new Set(paths.map(imagePath))].sort()
  const withData = [...new Set((opts.withData ?? []).map(imagePath))].sort()
  const key = digestOf({ layers: layers.map((l) => l.digest), wanted, withData })
  const memo = store.layout.imageLookup(key)
  try {
    const saved = JSON.parse(await fsp.readFile(memo, 'utf8')) as Record<string, (Omit<ImageNode, 'data'> & { data?: string }) | null>
    return new Map(Object.entries(saved).map(([k, v]): [string, ImageNode | null] => {
      if (!v) return [k, null]
      const { data, ...rest } = v
      return [k, data === undefined ? rest : { ...rest, data: Buffer.from(data, 'base64') }]
    }))
  } catch {
    // not memoised yet
  }
  const result = await subStep(`scan\0${key}`, `[internal] read base layers (${layers.length} layer${layers.length === 1 ? '' : 's'})`, () =>
    scan(store, layers, new Set(wanted), new Set(withData), opts.signal))
  const out: Record<string, unknown> = {}
  for (const p of wanted) {
    const n = result.get(p)
    out[p] = n ? { ...n, ...(n.data ? { data: n.data.toString('base64') } : {}) } : null
  }
  // Parallel branches look up the same paths at once: each writes its own temp, the last rename wins
  // (the contents are equal). Not fsynced: a memo lost in a crash is recomputed.
  await fsp.mkdir(store.layout.dir('imageLookups'), { recursive: true })
  await writeFileAtomic(memo, JSON.stringify(out))
  return new Map(wanted.map((p) => [p, result.get(p) ?? null]))
}

async function scan(store: Store, layers: readonly LayerRef[], wanted: Set<string>, withData: Set<string>, signal: AbortSignal | undefined): Promise<Map<string, ImageNode>> {
  const found = new Map<string, ImageNode>()
  const hidden = new Set<string>()
  const opaque = new Set<string>()

  const isHidden = (p: string): boolean => {
    if (hidden.has(p)) return true
    let i = p.indexOf('/')
    while (i >= 0) {
      const a = p.slice(0, i)
      if (hidden.has(a) || opaque.has(a)) return true
      const f = found.get(a)
      if (f && f.type !== 'dir') return true
      i = p.indexOf('/', i + 1)
    }
    return false
  }
  const settled = (): boolean => [...wanted].every((p) => found.has(p) || isHidden(p))

  for (let i = layers.length - 1; i >= 0 && !settled(); i--) {
    throwIfAborted(signal)
    const whiteouts: string[] = []
    const opaques: string[] = []
    let pending = [...wanted].filter((p) => !found.has(p) && !isHidden(p)).length
    let parse!: ReturnType<typeof parseStream>
    const onEntry = (e: ReadEntry): void => {
      // Everything wanted was found in this layer (entries come one after the other, so a body
      // being collected has ended): whiteouts further down it only hide lower layers. Stop reading.
      if (pending === 0) {
        e.resume()
        parse.stop()
        return
      }
      const p = imagePath(e.path)
      const slash = p.lastIndexOf('/')
      const base = p.slice(slash + 1)
      const dir = slash < 0 ? '' : p.slice(0, slash)
      if (base === '.wh..wh..opq') opaques.push(dir)
      else if (base.startsWith('.wh.')) whiteouts.push(dir ? `${dir}/${base.slice(4)}` : base.slice(4))
      else if (wanted.has(p) && !found.has(p) && !isHidden(p)) {
        const type = typeOf(e)
        const node = { type, mode: (e.mode ?? 0) & 0o7777, uid: e.uid ?? 0, gid: e.gid ?? 0, ...(e.linkpath ? { linkname: e.linkpath } : {}) }
        if (type === 'file' && withData.has(p) && e.size <= MAX_DATA) {
          const chunks: Buffer[] = []
          e.on('data', (c: Buffer) => chunks.push(c))
          e.on('end', () => found.set(p, { ...node, data: Buffer.concat(chunks) }))
          found.set(p, node)
          pending--
          return
        }
        found.set(p, node)
        pending--
      }
      e.resume()
    }
    parse = parseStream(store.blobs.open(layers[i]!.digest), onEntry, signal)
    await parse.done
    for (const w of whiteouts) hidden.add(w)
    for (const o of opaques) opaque.add(o)
  }
  return found
}

/**
 * Resolves `path` (absolute in the image) through the image's symlinks, with the image root as '/'
 * (`..` stops there). Returns the resolved path and the nodes of the resolved path's ancestors and
 * of the path itself (null = missing). The final component is followed too, like BuildKit does for
 * a COPY destination.
 */
export async function resolveImagePath(
  store: Store,
  layers: readonly LayerRef[],
  path: string,
  signal?: AbortSignal,
): Promise<{ path: string; nodes: Map<string, ImageNode | null> }> {
  let current = imagePath(path)
  for (let n = 0; n < MAX_LINKS; n++) {
    const parts = current === '' ? [] : current.split('/')
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
    const nodes = layers.length === 0 ? new Map<string, ImageNode | null>(prefixes.map((p) => [p, null])) : await lookupImagePaths(store, layers, prefixes, { signal })
    let redirected = false
    for (let i = 0; i < prefixes.length; i++) {
      const node = nodes.get(prefixes[i]!)
      if (!node) break
      if (node.type === 'symlink' && node.linkname !== undefined) {
        const parent = parts.slice(0, i).join('/')
        const target = node.linkname.startsWith('/') ? node.linkname : `/${parent}/${node.linkname}`
        current = imagePath(posix.join(target, ...parts.slice(i + 1)))
        redirected = true
        break
      }
    }
    if (!redirected) return { path: current, nodes }
  }
  return { path: current, nodes: new Map([[current, null]]) }
}

/**
 * The bytes of file `path` in the image (symlinks followed inside the image, hard links to their
 * target), or undefined when there is no such regular file.
 */
export async function readImageFile(store: Store, layers: readonly LayerRef[], path: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  if (layers.length === 0) return undefined
  let p = imagePath(path)
  for (let n = 0; n < MAX_LINKS; n++) {
    const dir = posix.dirname(`/${p}`)
    const resolvedDir = (await resolveImagePath(store, layers, dir, signal)).path
    p = imagePath(`${resolvedDir}/${posix.basename(`/${p}`)}`)
    const node = (await lookupImagePaths(store, layers, [p], { withData: [p], signal })).get(p)
    if (!node) return undefined
    if (node.type === 'file') return node.data
    if ((node.type === 'symlink' || node.type === 'hardlink') && node.linkname !== undefined) {
      // A hard link's name is from the image root; a symlink's is relative to its directory.
      p = imagePath(node.type === 'hardlink' || node.linkname.startsWith('/') ? node.linkname : posix.join(`/${resolvedDir}`, node.linkname))
      continue
    }
    return undefined
  }
  return undefined
}
