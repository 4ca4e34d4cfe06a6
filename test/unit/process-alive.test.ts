import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { isProcessAlive } from '../../src/util/process.js'

describe('isProcessAlive', () => {
  it('counts a running process as alive and an unreaped zombie as gone', async () => {
    // `sleep 0` becomes a zombie: its parent execs into `sleep 5`, which never waits for it.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      const zombie = Number(await new Promise<string>((r) => parent.stdout!.once('data', (d: Buffer) => r(d.toString().trim()))))
      const state = () => { const s = readFileSync(`/proc/${zombie}/stat`, 'utf8'); return s[s.lastIndexOf(')') + 2] }
      for (let i = 0; i < 100 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20))
      expect(state()).toBe('Z')
      expect(isProcessAlive(zombie)).toBe(false)
      expect(isProcessAlive(parent.pid!)).toBe(true)
      expect(isProcessAlive(process.pid)).toBe(true)
    } finally {
      parent.kill('SIGKILL')
    }
  })
})
