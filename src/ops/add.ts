/**
 * ADD: COPY plus local tar archives unpacked into the destination (plain, gzip, bzip2, xz; told by
 * their bytes) and http(s) URLs downloaded (never unpacked). See archive.ts and download.ts.
 */
import { cpuSlotOf } from '../solver/scheduler.js'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { CopyError, ErrorCodes, ImagesmithError } from '../errors.js'
import { EntrySet, type Owner } from '../context/collect.js'
import { contentKey, copyFileHashedSync, hashFileSync } from '../context/content-key.js'
import { loadDockerignore, PatternMatcher } from '../context/dockerignore.js'
import type { AddSpec } from '../graph/nodes/add-node.js'
import { writeLayer } from '../layer/write-layer.js'
import { makeTempDir } from '../store/atomic-write.js'
import type { ExecContext, Executor, LayerPlan } from '../solver/types.js'
import { detectArchive, extractArchive, type ArchiveKind } from './archive.js'
import { createdBy, placeInline, requireDirDest, resolveOwner } from './copy.js'
import { prewritable } from '../snapshot/from-entries.js'
import { writeWithSnapshot } from '../snapshot/unpack.js'
import { download, isUrl, urlFileName, type Downloaded } from './download.js'
import { fetchGit, isGitSource } from './git-source.js'
import { execPlan } from '../cache/layer-cache.js'
import { addDestDirs, findSources, placeSources, resolveDest, type Dest, type Found, type SourceRoot } from './placement.js'
import { literalCopySpec, solveBudget } from './expand-spec.js'
import { withLayer } from './state.js'

/** One item the step places, in source order (a later one overwrites an earlier one's paths). */
type Part =
  | { readonly kind: 'local'; readonly found: Found }
  | { readonly kind: 'archive'; readonly found: Found; readonly archive: ArchiveKind; readonly sha256: string }
  | { readonly kind: 'url'; readonly src: string; dl?: Downloaded }
  | { readonly kind: 'git'; readonly src: string; readonly root: string; readonly commit: string }

interface Placement {
  readonly ctx: ExecContext
  readonly spec: AddSpec
  readonly dest: Dest
  readonly owner: Owner
  readonly chmod?: number
  readonly exclude?: PatternMatcher
  readonly root: SourceRoot
  readonly multi: boolean
  readonly tmp: string
}

async function place(set: EntrySet, part: Part, p: Placement, index: number): Promise<void> {
  const { ctx, dest, owner } = p
  if (part.kind === 'local') {
    placeSources(set, [part.found], p.root, dest, {
      owner, mtime: ctx.epoch, destWritten: p.spec.dest, multi: p.multi,
      ...(p.exclude ? { exclude: p.exclude } : {}), ...(p.chmod !== undefined ? { chmod: p.chmod } : {}),
    })
    return
  }
  if (part.kind === 'git') {
    // The repository's tree goes into dest as a directory's contents do (BuildKit copies the git source's root).
    const root: SourceRoot = { root: part.root }
    placeSources(set, findSources(['.'], root), root, dest, {
      owner, mtime: ctx.epoch, destWritten: p.spec.dest, multi: p.multi,
      ...(p.exclude ? { exclude: p.exclude } : {}), ...(p.chmod !== undefined ? { chmod: p.chmod } : {}),
    })
    return
  }
  if (part.kind === 'archive') {
    // An archive always unpacks into the destination as a directory, slash or not (BuildKit's unpack
    // MkdirAll's it 0755 with the --chown owner; --chmod changes nothing of an archive's, and
    // --chown nothing of its entries).
    addDestDirs(set, dest, owner, ctx.epoch, true)
    const dir = join(p.tmp, `a${index}`)
    await fsp.mkdir(dir, { recursive: true })
    // Unpacked from a private copy checked against the hash the key was made with: the user may edit
    // the archive after it was hashed, and the layer cached under the key must hold what it names.
    const copy = join(p.tmp, `a${index}.archive`)
    const sha256 = copyFileHashedSync(part.found.match.host, copy)
    if (sha256 !== part.sha256) {
      throw new ImagesmithError(ErrorCodes.SOURCE_CHANGED, `${part.found.src} changed while the step ran (its bytes hash to sha256:${sha256}, the cache key was made with sha256:${part.sha256})`, {
        path: part.found.src, source: part.found.match.host, expected: `sha256:${part.sha256}`, actual: `sha256:${sha256}`,
      })
    }
    const entries = await extractArchive(copy, part.archive, {
      dest: dest.path, tmpDir: dir, archiveName: part.found.src, mtime: ctx.epoch,
      ...(p.spec.chown ? { impliedOwner: owner } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    })
    for (const e of entries) set.add(e)
    return
  }
  const dl = part.dl ?? (part.dl = await download(part.src, p.tmp, { ...(p.spec.checksum ? { checksum: p.spec.checksum } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) }))
  const name = urlFileName(part.src)
  const toDir = dest.dirSyntax || dest.existsDir || p.multi
  const target = toDir ? (dest.path ? `${dest.path}/${name}` : name) : dest.path
  if (target === '') throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `cannot download ${part.src} onto the image root`, { path: part.src })
  addDestDirs(set, dest, owner, ctx.epoch, toDir)
  set.add({
    type: 'file', path: target, mode: p.chmod ?? 0o600, uid: owner.uid, gid: owner.gid,
    mtime: dl.lastModified ?? ctx.epoch, size: dl.size, source: { path: dl.path },
  })
}

export const addExecutor: Executor<'add'> = {
  kind: 'add',
  async exec(vertex, inputs, ctx) {
    return execPlan(await addExecutor.prepare!(vertex, inputs, ctx), ctx)
  },

  /**
   * Sources are fetched (git, URLs without a checksum) and hashed for the key; the plan holds them
   * in a temp dir until it is released.
   */
  async prepare(vertex, inputs, ctx): Promise<LayerPlan> {
    const parent = inputs[0]!
    const spec = literalCopySpec(vertex.spec, parent, solveBudget(ctx))
    const dest = await resolveDest(ctx, parent, spec.dest, spec.link)
    requireDirDest(spec.sources.length, dest, spec.dest)
    const owner = await resolveOwner(ctx, parent, spec.chown)
    const ignorePatterns = loadDockerignore(ctx.contextDir, ctx.dockerignore)
    const root: SourceRoot = { root: ctx.contextDir, label: `the build context ${ctx.contextDir}`, ...(ignorePatterns.length > 0 ? { ignore: new PatternMatcher(ignorePatterns) } : {}) }
    const chmod = spec.chmod === undefined ? undefined : parseInt(spec.chmod, 8)
    const exclude = spec.exclude.length > 0 ? new PatternMatcher(spec.exclude) : undefined
    const urls = spec.sources.filter((s) => isUrl(s) && !isGitSource(s))
    // With a checksum the one URL's content is known up front: a cache hit needs no download.
    const deferDownload = spec.checksum !== undefined && urls.length === 1

    // Named with our pid, so a build killed mid-download leaves a dir the next build sweeps.
    const tmp = await makeTempDir(ctx.store.layout.dir('tmp'), 'add')
    const release = () => fsp.rm(tmp, { recursive: true, force: true })
    try {
      const parts: Part[] = []
      for (const [i, src] of spec.sources.entries()) {
        if (isGitSource(src)) {
          const g = await fetchGit(src, join(tmp, `git${i}`), { keepGitDir: spec.keepGitDir === true, ...(ctx.signal ? { signal: ctx.signal } : {}) })
          parts.push({ kind: 'git', src, ...g })
          continue
        }
        if (isUrl(src)) {
          const part: Part = { kind: 'url', src }
          if (!deferDownload) part.dl = await download(src, tmp, { ...(spec.checksum ? { checksum: spec.checksum } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) })
          parts.push(part)
          continue
        }
        for (const found of findSources([src], root)) {
          const kind = spec.unpack && found.match.stat!.isFile() ? await detectArchive(found.match.host) : undefined
          parts.push(kind ? { kind: 'archive', found, archive: kind, sha256: hashFileSync(found.match.host) } : { kind: 'local', found })
        }
      }
      const inline = spec.inline ?? []
      // Sources as written: one glob's several matches are placed one after another (placement.ts).
      const multi = spec.sources.length + inline.length > 1
      if (multi && !dest.dirSyntax && !dest.existsDir) {
        throw new CopyError(ErrorCodes.COPY_DEST_NOT_DIR, `adding several sources needs a destination ending in '/', got ${spec.dest}`, { path: spec.dest, dest: spec.dest })
      }
      const placement: Placement = { ctx, spec, dest, owner, root, multi, tmp, ...(chmod !== undefined ? { chmod } : {}), ...(exclude ? { exclude } : {}) }

      // Content key: what each part contributes, in order. Local trees are keyed by their entries'
      // bytes; archives by the archive's bytes; URLs by the downloaded digest (or the checksum).
      const keyParts: unknown[] = []
      // Context files are checked against these when the layer is written (as COPY's are).
      const expect = new Map<string, string>()
      for (const [i, part] of parts.entries()) {
        if (part.kind === 'local') {
          const one = new EntrySet()
          await place(one, part, placement, i)
          // Placed alone a file may land on dest itself: its name, which decides where it lands
          // next to the step's other matches, is in the key too.
          keyParts.push({ local: contentKey(one.finalize(), undefined, undefined, expect), name: part.found.match.written })
        } else if (part.kind === 'archive') {
          // ownModes, ownOwners: entries keep their modes and owners whatever --chmod and --chown
          // say; layers cached before those rules (when the flags replaced them) must not answer
          // for this key.
          keyParts.push({ archive: part.found.match.written, kind: part.archive, sha256: part.sha256, ownModes: true, ownOwners: true })
        } else if (part.kind === 'git') {
          keyParts.push({ git: part.src, commit: part.commit, keepGitDir: spec.keepGitDir === true })
        } else {
          keyParts.push({ url: part.src, digest: part.dl?.digest ?? spec.checksum, lastModified: part.dl?.lastModified ?? null })
        }
      }
      // Heredoc files are in the spec itself (and so in the key); placed as COPY places them, never unpacked.
      if (inline.length > 0) keyParts.push({ inline: true })
      const destNodes = Object.fromEntries([...dest.nodes].map(([k, v]) => [k, v && { type: v.type, mode: v.mode, uid: v.uid, gid: v.gid }]))
      const keyDoc = {
        kind: 'add', spec, content: keyParts, workdir: dest.workdir, dest: dest.path, destNodes, existsDir: dest.existsDir,
        uid: owner.uid, gid: owner.gid, epoch: ctx.epoch, compression: ctx.compression,
      }
      return {
        keyDoc,
        make: async () => {
          const set = new EntrySet()
          for (const [i, part] of parts.entries()) await place(set, part, placement, i)
          for (const f of inline) placeInline(set, f, dest, owner, ctx.epoch, chmod, multi)
          const entries = set.finalize()
          const opts = { compression: ctx.compression, expect, ...(ctx.signal ? { signal: ctx.signal } : {}), ...cpuSlotOf(ctx.limits, ctx.signal) }
          // As COPY does: a RUN on top reads the snapshot written in the same pass, not the layer unpacked back.
          return ctx.step?.rootfsWanted && prewritable(entries)
            ? writeWithSnapshot(ctx.store, (tee) => writeLayer(entries, ctx.store.blobs, { ...opts, tee }), ctx.signal ? { signal: ctx.signal } : {})
            : writeLayer(entries, ctx.store.blobs, opts)
        },
        finish: (layer) => withLayer(parent, ctx, layer, createdBy('ADD', spec)),
        release,
      }
    } catch (error) {
      await release()
      throw error
    }
  },
}
