import { promises as fsp } from 'node:fs'
import { dirname, join } from 'node:path'

/** The commit a git work tree is at, and its origin's URL when it has one. */
export interface GitSource {
  readonly commit: string
  readonly url?: string
}

/** Most bytes read of HEAD, a ref file, packed-refs or config: a stranger's .git is bounded like any input. */
const MAX_GIT_FILE = 4 << 20
/** Most directories walked up from the context to find `.git`, and most symbolic refs followed. */
const MAX_UP = 64
const MAX_REF_HOPS = 8

async function readSmall(path: string): Promise<string | undefined> {
  try {
    const h = await fsp.open(path, 'r')
    try {
      const buf = Buffer.alloc(MAX_GIT_FILE)
      const { bytesRead } = await h.read(buf, 0, MAX_GIT_FILE, 0)
      return buf.subarray(0, bytesRead).toString('utf8')
    } finally {
      await h.close()
    }
  } catch {
    return undefined
  }
}

const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/

/**
 * The commit of the git work tree holding `dir`, read from `.git/HEAD` and its ref (loose, else
 * packed-refs) without running git; a `.git` file (`gitdir: …`, a worktree or submodule) is followed,
 * and a worktree's refs are read from its common dir. undefined when `dir` is not in a work tree.
 */
export async function gitSourceOf(dir: string): Promise<GitSource | undefined> {
  let here = dir
  for (let i = 0; i < MAX_UP; i++) {
    const dotGit = join(here, '.git')
    const stat = await fsp.stat(dotGit).catch(() => undefined)
    if (stat) return readRepo(stat.isFile() ? await followGitFile(dotGit, here) : dotGit)
    const up = dirname(here)
    if (up === here) return undefined
    here = up
  }
  return undefined
}

async function followGitFile(file: string, workTree: string): Promise<string | undefined> {
  const text = await readSmall(file)
  const m = text?.match(/^gitdir: (.+)$/m)
  if (!m) return undefined
  const p = m[1]!.trim()
  return p.startsWith('/') ? p : join(workTree, p)
}

async function readRepo(gitDir: string | undefined): Promise<GitSource | undefined> {
  if (!gitDir) return undefined
  const common = (await readSmall(join(gitDir, 'commondir')))?.trim()
  const commonDir = common ? (common.startsWith('/') ? common : join(gitDir, common)) : gitDir
  let head = (await readSmall(join(gitDir, 'HEAD')))?.trim()
  for (let hop = 0; head?.startsWith('ref: ') && hop < MAX_REF_HOPS; hop++) {
    const ref = head.slice(5).trim()
    if (ref.includes('..')) return undefined
    head = (await readSmall(join(gitDir, ref)))?.trim() ?? (await readSmall(join(commonDir, ref)))?.trim() ?? (await packedRef(commonDir, ref))
  }
  if (!head || !SHA.test(head)) return undefined
  const url = await originUrl(commonDir)
  return { commit: head, ...(url ? { url } : {}) }
}

async function packedRef(gitDir: string, ref: string): Promise<string | undefined> {
  const text = await readSmall(join(gitDir, 'packed-refs'))
  for (const line of text?.split('\n') ?? []) {
    const sp = line.indexOf(' ')
    if (sp === 40 || sp === 64) if (line.slice(sp + 1).trim() === ref) return line.slice(0, sp)
  }
  return undefined
}

async function originUrl(gitDir: string): Promise<string | undefined> {
  const text = await readSmall(join(gitDir, 'config'))
  if (!text) return undefined
  let inOrigin = false
  for (const line of text.split('\n')) {
    const t = line.trim()
    if (t.startsWith('[')) inOrigin = t === '[remote "origin"]'
    else if (inOrigin && t.startsWith('url')) {
      const url = t.slice(t.indexOf('=') + 1).trim()
      // Credentials in a remote URL (https://user:token@host/…) never go into an attestation.
      return url.replace(/^([a-z+]+:\/\/)[^@/]*@/i, '$1')
    }
  }
  return undefined
}
