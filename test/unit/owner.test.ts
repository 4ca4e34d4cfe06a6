import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { claimOwner, isOwnerAlive, isSelf, knowOwners, ownerTag, parseOwnerTag, sweepDeadOwners } from '../../src/util/owner.js'

const dir = mkdtempSync(join(tmpdir(), 'ism-owner-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const ownerModule = resolve(__dirname, '../../src/util/owner.ts')

/** Another process that claims an owner id in `owners` and prints its tag, then waits to be killed. */
async function otherOwner(owners: string): Promise<{ tag: string; kill: () => Promise<void> }> {
  const code = `const { claimOwner, ownerTag } = await import(${JSON.stringify(ownerModule)}); claimOwner(${JSON.stringify(owners)}); console.log(ownerTag()); setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  const tag = await new Promise<string>((res, rej) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d
      if (out.includes('\n')) res(out.trim())
    })
    child.on('exit', (c) => rej(new Error(`owner child exited ${c}`)))
  })
  const exited = new Promise<void>((res) => child.on('exit', () => res()))
  return { tag, kill: async () => { child.kill('SIGKILL'); await exited } }
}

describe('owner ids', () => {
  it('a writer is alive while its lock is held, whatever its pid says, and dead once it is gone', async () => {
    const owners = join(dir, 'owners-a')
    knowOwners(owners)
    const other = await otherOwner(owners)
    const owner = parseOwnerTag(other.tag)!
    expect(owner.id).toMatch(/^[0-9a-f]{12}$/)
    // The pid as another pid namespace would give it: no process here has it.
    const foreign = { ...owner, pid: 4_000_000 }
    expect(isOwnerAlive(foreign)).toBe(true)
    await other.kill()
    // A lock seen held counts as held for a moment (one check per writer in a sweep): then dead.
    const end = Date.now() + 5000
    while (isOwnerAlive(foreign) && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
    expect(isOwnerAlive(foreign)).toBe(false)
    // A dead owner's lock file is removed once judged.
    expect(existsSync(join(owners, `${owner.id}.lock`))).toBe(false)
  })

  it('claims once per store; names written before a claim, and unknown stores, are judged safely', () => {
    const before = ownerTag()
    const owners = join(dir, 'owners-b')
    expect(claimOwner(owners)).toBe(true)
    expect(claimOwner(owners)).toBe(true)
    const tag = ownerTag()
    expect(tag).toMatch(new RegExp(`^${process.pid}-o[0-9a-f]{12}$`))
    expect(before === String(process.pid) || before === tag).toBe(true)
    expect(isSelf(parseOwnerTag(tag)!)).toBe(true)
    expect(isOwnerAlive(parseOwnerTag(tag)!)).toBe(true)
    // An id with a lock file in no store this process knows, or a bare pid: judged by pid.
    expect(isOwnerAlive({ pid: process.ppid, id: '0123456789ab' })).toBe(true)
    expect(isOwnerAlive({ pid: 4_000_000, id: '0123456789ab' })).toBe(false)
    expect(isOwnerAlive({ pid: 4_000_000 })).toBe(false)
    expect(parseOwnerTag('12-oXYZ')).toBeUndefined()
    expect(parseOwnerTag('0')).toBeUndefined()
  })
})

describe('sweepDeadOwners', () => {
  it('removes the lock files of owners gone and keeps the live ones', async () => {
    const owners = join(dir, 'owners-c')
    knowOwners(owners)
    const live = await otherOwner(owners)
    const dead = await otherOwner(owners)
    await dead.kill()
    expect(sweepDeadOwners(owners)).toBe(1)
    expect(existsSync(join(owners, `${parseOwnerTag(live.tag)!.id}.lock`))).toBe(true)
    expect(existsSync(join(owners, `${parseOwnerTag(dead.tag)!.id}.lock`))).toBe(false)
    await live.kill()
  })
})
