/**
 * One store mounted into several containers (CI jobs sharing a cache dir): each build runs in its own
 * pid namespace, where the other's pid means nothing or someone else. A sweep or a prune in one
 * must never take what a live build in the other holds.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'

const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const bed = requireTools(['unshare', 'flock', 'skopeo'], { needsRoot: true })

let work: string
let context: string
let bigScript: string
let smallScript: string

interface Run {
  readonly exited: () => boolean
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>
}

/**
 * The CLI in a new pid namespace with its own /proc. `padding` short-lived processes run first, so
 * the CLI's pid there is above `padding`: with a large padding for one build and none for the other,
 * the first build's pid is no live process in the other namespace (whose CLI and its few children
 * stay below it), which is what a pid check there gets wrong.
 */
function inPidNamespace(args: string[], cache: string, padding: number): Run {
  const pad = Array.from({ length: padding }, () => 'true &').join(' ')
  const cmd = `${pad} wait; "$0" "$@"; exit $?`
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', 'sh', '-c', cmd, process.execPath, bin, ...args], {
    env: { ...process.env, IMAGESMITH_CACHE: cache },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  let exited = false
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) =>
    child.on('exit', (code) => {
      exited = true
      res({ code, stdout, stderr })
    }),
  )
  return { exited: () => exited, done }
}

async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

beforeAll(async () => {
  if (bed.skip) return
  work = await tmpDir('ism-pidns-')
  context = join(work, 'ctx')
  // ~250 MB of incompressible files: the layer takes seconds to write, long enough for the other
  // namespace to start, sweep and prune while it is under way.
  for (let d = 0; d < 50; d++) {
    mkdirSync(join(context, `d${d}`), { recursive: true })
    for (let f = 0; f < 5; f++) writeFileSync(join(context, `d${d}`, `f${f}.bin`), randomBytes(1024 * 1024))
  }
  bigScript = join(work, 'big.ts')
  writeFileSync(bigScript, `import { image } from 'imagesmith'\nexport default image().from('scratch').copy('.', '/data')\n`)
  smallScript = join(work, 'small.ts')
  writeFileSync(join(work, 'small.txt'), 'small\n')
  writeFileSync(smallScript, `import { image } from 'imagesmith'\nexport default image().from('scratch').copy('small.txt', '/small.txt')\n`)
})
afterAll(() => cleanupTmpDirs())

describe.skipIf(bed.skip)('one store, builds in two pid namespaces', () => {
  it('a build and a prune in another pid namespace leave a running build its temps and its lease', async () => {
    const cache = join(work, 'cache')
    const out = join(work, 'big.tar')
    const big = inPidNamespace(['build', bigScript, '--context', context, '-o', `type=oci,dest=${out}`, '--progress', 'quiet'], cache, 40)
    // The big build is writing its layer: its temp blob and its lease exist.
    const tmp = join(cache, 'tmp')
    const leases = join(cache, 'leases')
    await until(() => existsSync(tmp) && readdirSync(tmp).some((n) => n.includes('.tmp-')) && existsSync(leases) && readdirSync(leases).length > 0, 'the big build to start its layer')

    // Another container: a build (its store init sweeps dead writers' temps), then a full prune.
    const small = inPidNamespace(['build', smallScript, '--context', work, '-o', `type=oci,dest=${join(work, 'small.tar')}`, '--progress', 'quiet'], cache, 0)
    const smallResult = await small.done
    expect(smallResult.code, smallResult.stderr).toBe(0)
    const prune = inPidNamespace(['cache', 'prune', '--all'], cache, 0)
    const pruneResult = await prune.done
    expect(pruneResult.code, pruneResult.stderr).toBe(0)

    // Only meaningful while the big build was still running.
    expect(big.exited(), 'the big build ended before the other namespace swept and pruned: make its context larger').toBe(false)
    // Its lease is still there (a prune that judged it by pid removed it as dead).
    expect(readdirSync(leases).length).toBeGreaterThan(0)

    const bigResult = await big.done
    expect(bigResult.code, bigResult.stderr).toBe(0)
    const inspect = await runTool('skopeo', ['inspect', `oci-archive:${out}`])
    expect(inspect.exitCode, inspect.stderr).toBe(0)
    // The store took the build whole: the same build again is all cached and gives the same digest.
    const again = inPidNamespace(['build', bigScript, '--context', context, '--progress', 'quiet'], cache, 0)
    const againResult = await again.done
    expect(againResult.code, againResult.stderr).toBe(0)
    expect(againResult.stdout.trim()).toBe(bigResult.stdout.trim())
    // Every owner lock left behind belongs to a live process: none is, now.
    const after = inPidNamespace(['cache', 'prune', '--all'], cache, 3)
    expect((await after.done).code).toBe(0)
    expect(readdirSync(leases)).toEqual([])
  }, 240_000)
})
