import { spawn } from 'node:child_process'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { fsPath } from '../util/names.js'

/**
 * Runs `cmd… paths…` in as few processes as `xargs -0` needs. Paths go through stdin as bytes, so
 * names that are not UTF-8 (string form of names.ts) reach the command unchanged, which argv
 * strings could not do.
 */
export function xargs(cmd: readonly string[], paths: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('xargs', ['-0', '-r', ...cmd], { stdio: ['pipe', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const failed = (why: string, cause?: unknown) =>
      new ImagesmithError(ErrorCodes.SNAPSHOT_FAILED, `${cmd[0]} failed (${why}) on ${paths.length} path(s), first ${paths[0]}: ${stderr.trim()}`, { command: cmd[0], path: paths[0], count: paths.length }, { cause })
    child.on('error', (e) => reject(failed(e.message, e)))
    child.on('close', (code) => (code === 0 ? resolve() : reject(failed(String(code)))))
    child.stdin.on('error', () => undefined) // reported through 'close'
    child.stdin.end(Buffer.concat(paths.flatMap((p) => [Buffer.from(fsPath(p)), NUL])))
  })
}
const NUL = Buffer.of(0)
