/**
 * The peers a whole-process case is measured against in the same run: buildah (its own storage
 * root per cold build, `--layers`, runc, output pushed to an OCI archive as ours is written) and
 * BuildKit in a private dockerd 20.10 (`DOCKER_BUILDKIT=1 docker build --network none`, the image
 * left in the daemon: its export is not counted, which favours it). A peer that cannot start says
 * why instead of vanishing from the table.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DOCKER_CLIENT, startDockerd, toolPath, type Dockerd } from '../test/helpers/tools.js'
import { mountsUnder } from '../test/helpers/testbed.js'

/** One Dockerfile build of a peer, timed whole (client process start to exit). */
export interface Peer {
  readonly name: string
  /** Forget every cached result (keeps the base image). */
  reset(): void
  /** Builds `dockerfile` with `context`; returns seconds. Throws with the tool's stderr on failure. */
  build(dockerfile: string, context: string): number
  close(): Promise<void>
}

/** A peer, or why it is not in this run. */
export type PeerSlot = { readonly peer: Peer } | { readonly name: string; readonly skipped: string }

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env, maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.error?.message || '').slice(-2000)}`)
}

/**
 * buildah's FROM names the base by transport (`oci-archive:PATH`), so every cold build starts from
 * an empty storage root, as ours starts from an empty store.
 */
export function buildahPeer(work: string, out: string): PeerSlot {
  const name = 'buildah'
  if (!toolPath('buildah')) return { name, skipped: 'buildah not installed' }
  if (!toolPath('runc')) return { name, skipped: 'runc not installed (crun fails here: cgroups in hybrid mode)' }
  const root = join(work, 'buildah-root')
  const runroot = join(work, 'buildah-run')
  const g = ['--root', root, '--runroot', runroot]
  const reset = () => {
    if (existsSync(root)) spawnSync('buildah', [...g, 'rmi', '-af'], { stdio: 'ignore' })
    for (const m of mountsUnder(root)) spawnSync('umount', ['-l', m], { stdio: 'ignore' })
    rmSync(root, { recursive: true, force: true })
    rmSync(runroot, { recursive: true, force: true })
  }
  return {
    peer: {
      name,
      reset,
      build(dockerfile, context) {
        const t0 = process.hrtime.bigint()
        run('buildah', [...g, 'bud', '--runtime', 'runc', '--layers', '--jobs', '4', '--network', 'none', '-q', '-f', dockerfile, '-t', 'bench-out', context])
        run('buildah', [...g, 'push', '-q', 'bench-out', `oci-archive:${out}`])
        return seconds(t0)
      },
      async close() {
        reset()
      },
    },
  }
}

/**
 * BuildKit inside a private dockerd; the base is loaded once from `baseDockerTar` (an archive with
 * Docker's manifest.json) under `baseTag`, which the Dockerfiles name in FROM.
 */
export async function buildkitPeer(baseDockerTar: string): Promise<PeerSlot> {
  const name = 'BuildKit'
  if (!toolPath('dockerd')) return { name, skipped: 'dockerd not installed' }
  if (!existsSync(DOCKER_CLIENT)) return { name, skipped: `${DOCKER_CLIENT} (the 20.10 client) not installed` }
  let d: Dockerd
  try {
    d = await startDockerd()
  } catch (e) {
    return { name, skipped: `dockerd did not start: ${(e as Error).message.split('\n')[0]}` }
  }
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_BUILDKIT: '1', DOCKER_CONFIG: join(d.dir, 'cfg') }
  delete env['DOCKER_HOST']
  const docker = (args: string[]) => run(DOCKER_CLIENT, ['-H', `unix://${d.socket}`, ...args], env)
  try {
    docker(['load', '-q', '-i', baseDockerTar])
  } catch (e) {
    await d.stop()
    return { name, skipped: `docker load of the base failed: ${(e as Error).message.split('\n')[0]}` }
  }
  return {
    peer: {
      name,
      reset() {
        spawnSync(DOCKER_CLIENT, ['-H', `unix://${d.socket}`, 'image', 'rm', '-f', 'bench-out'], { stdio: 'ignore', env })
        docker(['builder', 'prune', '-af'])
      },
      build(dockerfile, context) {
        const t0 = process.hrtime.bigint()
        docker(['build', '-q', '--network', 'none', '-f', dockerfile, '-t', 'bench-out', context])
        return seconds(t0)
      },
      close: () => d.stop(),
    },
  }
}

/** The bench's Dockerfiles: the COPY + RUN case and four independent `RUN sleep 2` stages. */
export function writeDockerfiles(dir: string, from: string): { main: string; sleep: string } {
  mkdirSync(dir, { recursive: true })
  const main = join(dir, 'Dockerfile')
  const sleep = join(dir, 'Dockerfile.sleep')
  writeFileSync(main, `FROM ${from}\nCOPY . /app\nRUN ls -R /app | wc -l\nCMD ["sh"]\n`)
  const stages = [1, 2, 3, 4].map((n) => `FROM ${from} AS s${n}\nRUN sleep 2; echo ${n} > /s${n}\n`).join('')
  writeFileSync(sleep, `${stages}FROM ${from}\n${[1, 2, 3, 4].map((n) => `COPY --from=s${n} /s${n} /s${n}\n`).join('')}`)
  return { main, sleep }
}

/** Tells whether `cmd` exists, for notes. */
export function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0]!
  } catch {
    return `${cmd}: unknown version`
  }
}
