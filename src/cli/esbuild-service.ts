/**
 * esbuild for the script loaders, and the end of its service process. esbuild's JS API runs one
 * `esbuild --service` child per thread that uses it and unrefs it, so Node exits without waiting:
 * the child then outlives the CLI, is reparented to init, and stays a zombie of the user's until
 * init reaps it. `stopEsbuild` kills the service and keeps this thread's loop running until the
 * child has been reaped (libuv reaps a dead child only while the loop that spawned it runs).
 */
import { readFileSync } from 'node:fs'

type Esbuild = typeof import('esbuild')

let loaded: Esbuild | undefined

/** esbuild, imported on first use (most runs load a cached script and never need it). */
export async function esbuild(): Promise<Esbuild> {
  return (loaded ??= await import('esbuild'))
}

/** How long to wait for the killed service to be reaped; it dies on SIGTERM in a few ms. */
const REAP_WAIT_MS = 5000
const POLL_MS = 5

/** Stops this thread's esbuild service, if it started one, and waits until its process is gone. */
export async function stopEsbuild(): Promise<void> {
  if (!loaded) return
  await loaded.stop()
  const deadline = Date.now() + REAP_WAIT_MS
  while (serviceChildren().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS))
}

/**
 * This thread's children named esbuild, alive or not yet reaped (Linux: /proc/thread-self; a child
 * is listed under the thread that spawned it). Elsewhere none is seen, and stop() alone must do.
 */
function serviceChildren(): number[] {
  let pids: string[]
  try {
    pids = readFileSync('/proc/thread-self/children', 'utf8').split(' ').filter(Boolean)
  } catch {
    return []
  }
  return pids.map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'esbuild'
    } catch {
      return false // reaped meanwhile
    }
  })
}
