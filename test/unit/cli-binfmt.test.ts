/** `imagesmith binfmt --install` against a fake binfmt_misc dir: the checks before any write, and idempotence. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import { installEmulators, listEmulators } from '../../src/cli/binfmt.js'

const AARCH64 = 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n'
const CONF = '# qemu-user-static\n:qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01:\\xff\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF\n'

const root = mkdtempSync(join(tmpdir(), 'ism-binfmt-cli-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let bin: string
let conf: string
let n = 0
beforeEach(() => {
  bin = join(root, `bin${n}`)
  conf = join(root, `conf${n++}`)
  mkdirSync(bin)
  mkdirSync(conf)
})

const caught = (f: () => unknown): { code?: string; message?: string; details?: Record<string, unknown> } | undefined => {
  try {
    f()
  } catch (e) {
    return e as { code?: string }
  }
  return undefined
}

describe('imagesmith binfmt --install', () => {
  it('mounts binfmt_misc when absent and writes the .conf line to register', () => {
    writeFileSync(join(conf, 'qemu-aarch64.conf'), CONF)
    const mounted: string[] = []
    const out = installEmulators(['arm64'], { binfmtDir: bin, confDir: conf, host: 'amd64', root: true, mount: (d) => { mounted.push(d); writeFileSync(join(d, 'register'), '') } })
    expect(mounted).toEqual([bin])
    expect(out).toEqual([{ arch: 'arm64', outcome: 'registered' }])
    expect(readFileSync(join(bin, 'register'), 'utf8')).toBe(':qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01:\\xff\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF')
  })

  it('leaves an F handler alone (also without root), replaces one without F, and skips the native arch', () => {
    writeFileSync(join(bin, 'register'), '')
    writeFileSync(join(bin, 'qemu-aarch64'), AARCH64)
    expect(installEmulators(['arm64', 'amd64'], { binfmtDir: bin, confDir: conf, host: 'amd64', root: false })).toEqual([
      { arch: 'arm64', outcome: 'already registered' },
      { arch: 'amd64', outcome: 'native' },
    ])
    writeFileSync(join(bin, 'qemu-aarch64'), AARCH64.replace('flags: POF', 'flags: PO'))
    writeFileSync(join(conf, 'qemu-aarch64.conf'), CONF)
    expect(installEmulators(['arm64'], { binfmtDir: bin, confDir: conf, host: 'amd64', root: true })[0]?.outcome).toBe('re-registered (enabled, with the F flag)')
    expect(readFileSync(join(bin, 'qemu-aarch64'), 'utf8')).toBe('-1')
    expect(readFileSync(join(bin, 'register'), 'utf8')).toContain(':qemu-aarch64:')
  })

  it('refuses before any write: not root, qemu-user-static missing (naming apt-get), an unknown arch', () => {
    writeFileSync(join(bin, 'register'), '')
    const notRoot = caught(() => installEmulators(['arm64'], { binfmtDir: bin, confDir: conf, host: 'amd64', root: false }))
    expect(notRoot?.code).toBe(ErrorCodes.BINFMT_NOT_PERMITTED)
    const noQemu = caught(() => installEmulators(['arm64'], { binfmtDir: bin, confDir: conf, host: 'amd64', root: true }))
    expect(noQemu?.code).toBe(ErrorCodes.EMULATOR_MISSING)
    expect(noQemu?.message).toContain('apt-get install qemu-user-static')
    expect(noQemu?.details).toMatchObject({ arch: 'arm64', path: join(conf, 'qemu-aarch64.conf') })
    const unknown = caught(() => installEmulators(['arm64', 'vax'], { binfmtDir: bin, confDir: conf, host: 'amd64', root: true }))
    expect(unknown?.code).toBe(ErrorCodes.UNSUPPORTED_PLATFORM)
    expect(readFileSync(join(bin, 'register'), 'utf8')).toBe('')
  })

  it('lists handlers by platform with their F flag', () => {
    writeFileSync(join(bin, 'qemu-aarch64'), AARCH64)
    expect(listEmulators({ binfmtDir: bin, host: 'amd64' })).toEqual({
      supported: ['linux/386', 'linux/amd64', 'linux/arm64'],
      emulators: [{ platform: 'linux/arm64', handler: 'qemu-aarch64', interpreter: '/usr/libexec/qemu-binfmt/aarch64-binfmt-P', fixBinary: true }],
    })
  })
})
