import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/**
 * Live processes running `sleep <seconds>` whose root is inside `dir` (a store's work dir holds the
 * container rootfs), so sleeps of other suites running at the same time never count. Zombies are
 * left out: the kernel reaps them as the container's pid namespace goes away. A container's root
 * reads as `/` through /proc/PID/root (it is in its own mount namespace), so its root mount in
 * /proc/PID/mountinfo is what places it: an overlay whose dirs lie in `dir`, or a bind of a dir there.
 */
export function sleepersUnder(dir: string, seconds: string): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((a) => a !== '')
      if (argv.length !== 2 || !/(^|\/)sleep$/.test(argv[0]!) || argv[1] !== seconds) continue
      const state = /\) (\S)/.exec(readFileSync(`/proc/${name}/stat`, 'utf8'))?.[1]
      if (state === 'Z') continue
      if (readlinkSync(`/proc/${name}/root`).startsWith(dir) || rootMountIn(name, dir)) out.push(Number(name))
    } catch {
      // the process ended while we looked
    }
  }
  return out
}

function rootMountIn(pid: string, dir: string): boolean {
  const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/')
  if (!root) return false
  const [pre, post = ''] = root.split(' - ')
  return pre!.split(' ')[3]!.startsWith(dir) || post.split(' ').slice(2).join(' ').split(',').some((o) => o.includes(`=${dir}/`) || o.includes(`:${dir}/`))
}
