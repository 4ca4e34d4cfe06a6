// Preloaded (`node --require`) into a process the bench measures: at exit it writes the process's
// peak RSS to the file named by BENCH_PEAK_RSS_FILE. VmHWM belongs to the post-exec address space;
// getrusage's maxRSS on Linux also carries the parent's RSS at fork time across exec, so it is
// only a fallback (not Linux).
'use strict'
const { readFileSync, writeFileSync } = require('node:fs')

const out = process.env.BENCH_PEAK_RSS_FILE
if (out) {
  process.on('exit', () => {
    let kb
    try {
      kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1])
    } catch {
      kb = process.resourceUsage().maxRSS
    }
    writeFileSync(out, String(kb))
  })
}
