// Preloaded (`node --import`) into a process the bake bench measures: times every child process
// start on this thread (ChildProcess#spawn, which spawn/execFile/exec/fork all go through; fork +
// exec happen inside that call, so its duration is what the main thread loses), and the sync
// spawns (spawnSync/execFileSync/execSync, which block it for the child's whole life). At exit it
// appends one JSON line to the file named by BENCH_SPAWN_METER_FILE.
import childProcess from 'node:child_process'
import { appendFileSync, readFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'

const out = process.env.BENCH_SPAWN_METER_FILE
if (out) {
  const m = { spawns: 0, spawnMs: 0, maxSpawnMs: 0, syncSpawns: 0, syncMs: 0, byCommand: {} }
  const count = (cmd, ms) => {
    const c = (m.byCommand[String(cmd).split('/').pop()] ??= { n: 0, ms: 0 })
    c.n++
    c.ms += ms
  }
  const proto = childProcess.ChildProcess.prototype
  const spawn = proto.spawn
  proto.spawn = function (options, ...rest) {
    const t0 = process.hrtime.bigint()
    try {
      return spawn.call(this, options, ...rest)
    } finally {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      m.spawns++
      m.spawnMs += ms
      if (ms > m.maxSpawnMs) m.maxSpawnMs = ms
      count(options?.file, ms)
    }
  }
  for (const name of ['spawnSync', 'execFileSync', 'execSync']) {
    const f = childProcess[name]
    childProcess[name] = function (...args) {
      const t0 = process.hrtime.bigint()
      try {
        return f.apply(this, args)
      } finally {
        m.syncSpawns++
        const ms = Number(process.hrtime.bigint() - t0) / 1e6
        m.syncMs += ms
        count(`${args[0]} (sync)`, ms)
      }
    }
  }
  syncBuiltinESMExports()
  process.on('exit', () => {
    let rssKB = process.resourceUsage().maxRSS
    try {
      rssKB = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1])
    } catch {}
    const cpu = process.cpuUsage()
    appendFileSync(out, JSON.stringify({ pid: process.pid, ...m, rssMB: rssKB / 1024, cpuS: (cpu.user + cpu.system) / 1e6, heapMB: process.memoryUsage().heapUsed / 2 ** 20 }) + '\n')
  })
}
