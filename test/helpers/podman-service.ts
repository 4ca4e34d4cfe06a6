/**
 * `podman system service` on a private socket, over a store of the shared podman helper, so a test
 * can talk to Podman's Docker-compatible API as it would to dockerd.
 */
import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createPodmanStore, type PodmanStore } from './tools.js'

export interface PodmanService {
  readonly store: PodmanStore
  readonly socket: string
  stop(): Promise<void>
}

export async function startPodmanService(): Promise<PodmanService> {
  const store = await createPodmanStore()
  const socket = join(store.dir, 'api.sock')
  const logPath = join(store.dir, 'service.log')
  const fd = openSync(logPath, 'a')
  const storageDriver = store.storageDriver
  const child = spawn(
    'podman',
    [
      '--root', join(store.dir, 'root'),
      '--runroot', join(store.dir, 'run'),
      '--tmpdir', join(store.dir, 'tmp'),
      '--storage-driver', storageDriver,
      '--runtime', 'runc',
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
      'system', 'service', '--time', '0', `unix://${socket}`,
    ],
    { stdio: ['ignore', fd, fd], env: { ...process.env, TMPDIR: store.dir } },
  )
  closeSync(fd)
  let exited = false
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())))
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM')
    await Promise.race([exit, new Promise((r) => setTimeout(r, 5000))])
    if (!exited) child.kill('SIGKILL')
    await store.cleanup()
  }
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline && !exited) {
    if (existsSync(socket)) return { store, socket, stop }
    await new Promise((r) => setTimeout(r, 50))
  }
  const log = readFileSync(logPath, 'utf8').slice(-4000)
  await stop()
  throw new Error(`podman system service did not start; log:\n${log}`)
}
