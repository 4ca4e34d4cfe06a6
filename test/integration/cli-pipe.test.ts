/**
 * The CLI's output piped into a reader that stops early (`imagesmith cache ls | head`): the CLI stops
 * writing and exits as the command would, with nothing on stderr (no EPIPE stack trace).
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')

let work: string
const env = () => ({ ...process.env, IMAGESMITH_CACHE: join(work, 'cache') })

/**
 * Runs the CLI with its stdout on a pipe whose read end is closed after the first chunk: the
 * output must be larger than the pipe's buffer plus that chunk, so later writes meet EPIPE.
 */
async function intoClosedPipe(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; first: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: work, env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  let first = ''
  child.stdout.once('data', (d: Buffer) => {
    first = d.toString('utf8')
    child.stdout.destroy()
  })
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null]
  return { code, signal, first, stderr }
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ism-pipe-'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('CLI output into a pipe closed early', () => {
  it('inspect | head: stops quietly and exits 0', async () => {
    // ~400 kB of Env lines: far more than a pipe holds (64 kB) plus one read.
    const envs = Array.from({ length: 1000 }, (_, i) => `.env('VAR_${i}', '${'x'.repeat(400)}')`).join('')
    const script = join(work, 'big-config.ts')
    writeFileSync(script, `import { image } from ${JSON.stringify(join(root, 'src', 'index.ts'))}\nexport default image()${envs}\n`)
    const archive = join(work, 'big.tar')
    const b = spawnSync(process.execPath, [bin, 'build', script, '-o', `type=oci,dest=${archive}`, '--progress', 'quiet'], { cwd: work, env: env(), encoding: 'utf8' })
    expect(b.status, b.stderr).toBe(0)

    const r = await intoClosedPipe(['inspect', archive])
    expect(r.first).toMatch(/^Name: /)
    expect(r.stderr).toBe('')
    expect(r.signal).toBe(null)
    expect(r.code).toBe(0)
  })

  it('cache ls | head: stops quietly and exits 0', async () => {
    // 2500 real (content-addressed) blobs, one ~50-byte line each: ~130 kB, twice what a pipe holds.
    const blobs = join(work, 'cache', 'blobs', 'sha256')
    mkdirSync(blobs, { recursive: true })
    for (let i = 0; i < 2500; i++) {
      const data = `blob ${i}\n`
      writeFileSync(join(blobs, createHash('sha256').update(data).digest('hex')), data)
    }
    const r = await intoClosedPipe(['cache', 'ls'])
    expect(r.first).toMatch(/^ID +KIND +SIZE/)
    expect(r.stderr).toBe('')
    expect(r.signal).toBe(null)
    expect(r.code).toBe(0)
  })
})
