/**
 * The tar an engine's `/build` receives: the context (as `.dockerignore` filters it, the same walk a
 * local COPY makes) under {@link ENGINE_CONTEXT_DIR}, and the Dockerfile beside it. Entries are
 * owned by root with the build's epoch as mtime, as a local COPY writes them, so both builds copy
 * the same files. Streamed in chunks; nothing is staged on disk.
 */
import { resolve } from 'node:path'
import { EntrySet, addTree } from '../context/collect.js'
import { PatternMatcher, loadDockerignore } from '../context/dockerignore.js'
import { tarChunks } from '../layer/tar-writer.js'
import { ENGINE_CONTEXT_DIR, ENGINE_DOCKERFILE } from './engine-dockerfile.js'

export interface EngineContextOptions {
  readonly contextDir: string
  /** An ignore file used instead of the context's `.dockerignore`. */
  readonly dockerignore?: string
  readonly dockerfile: string
  readonly epoch: number
}

/** The tar's chunks; the context is walked when this is called. */
export function engineContextTar(opts: EngineContextOptions): Iterable<Buffer> {
  const ignore = new PatternMatcher(loadDockerignore(opts.contextDir, opts.dockerignore !== undefined ? resolve(opts.dockerignore) : undefined))
  const owner = { uid: 0, gid: 0 }
  const set = new EntrySet()
  set.add({ type: 'dir', path: ENGINE_CONTEXT_DIR, mode: 0o755, uid: 0, gid: 0, mtime: opts.epoch })
  addTree(set, { hostDir: opts.contextDir, rootRel: '', dest: ENGINE_CONTEXT_DIR, ...(ignore.empty ? {} : { ignore }) }, { owner, mtime: opts.epoch })
  const text = Buffer.from(opts.dockerfile)
  set.add({ type: 'file', path: ENGINE_DOCKERFILE, mode: 0o644, uid: 0, gid: 0, mtime: opts.epoch, size: text.length, source: { data: text } })
  return tarChunks(set.finalize())
}
