/**
 * ADD of a git repository, as BuildKit's Dockerfile frontend reads such a source: `git@host:repo`,
 * `git://…`, `ssh://…`, or `http(s)://….git`, with an optional `#ref[:subdir]`. The ref (branch, tag
 * or commit) is fetched shallowly with the git CLI; the tree (or its subdir) is what ADD places, `.git`
 * left out unless `--keep-git-dir`.
 */
import { execFile } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { join, posix } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'

/** BuildKit's remote-git detection for ADD (gitutil.ParseGitRef's accepted forms). */
export function isGitSource(src: string): boolean {
  if (/^git@[^:/]+:/.test(src) || /^(git|ssh):\/\//.test(src)) return true
  return /^https?:\/\/[^#]+\.git(#.*)?$/.test(src)
}

export interface GitSource {
  readonly remote: string
  readonly ref?: string
  readonly subdir?: string
}

/** `remote#ref:subdir` */
export function parseGitSource(src: string): GitSource {
  const hash = src.indexOf('#')
  if (hash < 0) return { remote: src }
  const remote = src.slice(0, hash)
  const frag = src.slice(hash + 1)
  const colon = frag.indexOf(':')
  const ref = colon < 0 ? frag : frag.slice(0, colon)
  const subdir = colon < 0 ? undefined : frag.slice(colon + 1)
  return { remote, ...(ref ? { ref } : {}), ...(subdir ? { subdir } : {}) }
}

export interface FetchedGit {
  /** Host directory whose contents ADD places (the checkout, or its subdir). */
  readonly root: string
  /** The commit checked out: the content key of the source. */
  readonly commit: string
}

/** Fetches `src` into `dir` (made here). */
export async function fetchGit(src: string, dir: string, opts: { keepGitDir: boolean; signal?: AbortSignal }): Promise<FetchedGit> {
  const g = parseGitSource(src)
  if (g.subdir !== undefined && posix.normalize(`/${g.subdir}`).startsWith('/..')) {
    throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `git subdir ${g.subdir} leaves the repository`, { source: src })
  }
  await fsp.mkdir(dir, { recursive: true })
  const git = (args: string[]) => run(['-C', dir, ...args], src, opts.signal)
  await git(['init', '-q'])
  await git(['fetch', '-q', '--depth', '1', '--no-tags', g.remote, g.ref ?? 'HEAD'])
  await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', 'FETCH_HEAD'])
  const commit = (await git(['rev-parse', 'HEAD'])).trim()
  if (!opts.keepGitDir) await fsp.rm(join(dir, '.git'), { recursive: true, force: true })
  const root = g.subdir ? join(dir, posix.normalize(`/${g.subdir}`)) : dir
  const st = await fsp.stat(root).catch(() => undefined)
  if (!st?.isDirectory()) throw new ImagesmithError(ErrorCodes.COPY_SOURCE_NOT_FOUND, `${g.subdir} is not a directory in ${g.remote}`, { path: src })
  return { root, commit }
}

function run(args: string[], src: string, signal?: AbortSignal): Promise<string> {
  return new Promise((ok, fail) => {
    // No prompt for credentials (askPass answers with a failure): a build never waits on a terminal.
    execFile('git', ['-c', 'core.askPass=false', ...args], { maxBuffer: 16 << 20, ...(signal ? { signal } : {}) }, (err, stdout, stderr) => {
      if (err) fail(new ImagesmithError(ErrorCodes.ADD_DOWNLOAD_FAILED, `git ${args[2] ?? ''} of ${src} failed: ${stderr.trim() || err.message}`, { source: src }, { cause: err }))
      else ok(stdout)
    })
  })
}
