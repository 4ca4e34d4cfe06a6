/**
 * A command run under a child subreaper (subreaper.py): the processes it leaves behind when it
 * exits, still running or dead but not reaped, are found here instead of being taken by init.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Orphan {
  readonly pid: number
  /** The process's name (/proc/PID/comm). */
  readonly comm: string
  /** Its state letter: Z for a zombie. */
  readonly state: string
}

export interface SubreaperRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  /** What outlived the command (already killed and reaped by the time this returns). */
  readonly orphans: readonly Orphan[]
}

export function runUnderSubreaper(argv: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): SubreaperRun {
  const dir = mkdtempSync(join(tmpdir(), 'ism-subreaper-'))
  try {
    const result = join(dir, 'result.json')
    const r = spawnSync('python3', [join(__dirname, 'subreaper.py'), result, ...argv], { cwd: opts.cwd, env: opts.env, encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000 })
    if (r.error) throw r.error
    if (r.status !== 0) throw new Error(`subreaper.py exited ${r.status}: ${r.stderr}`)
    const { code, orphans } = JSON.parse(readFileSync(result, 'utf8')) as { code: number; orphans: Orphan[] }
    return { code, stdout: r.stdout, stderr: r.stderr, orphans }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
