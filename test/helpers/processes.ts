import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/**
 * Live processes running `sleep <seconds>` whose root is inside `dir` (a store's work dir holds the
 * container rootfs), so sleeps of other suites running at the same time never count. Zombies are
 * left out: the kernel reaps them as the container's pid namespace goes away.
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
      if (readlinkSync(`/proc/${name}/root`).startsWith(dir)) out.push(Number(name))
    } catch {
      // the process ended while we looked
    }
  }
  return out
}
