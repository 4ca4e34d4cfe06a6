import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import { parseHandler, requireRunnable, runSupport } from '../../src/ops/platform-support.js'

// As qemu-user-static 7.2 registers aarch64 (flags OCF) and s390x (big-endian ELF).
const AARCH64 = 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n'
const S390X = 'enabled\ninterpreter /usr/bin/qemu-s390x-static\nflags: OC\noffset 0\nmagic 7f454c4602020100000000000000000000020016\nmask ffffffffffffff00fffffffffffffffffffeffff\n'

const dir = mkdtempSync(join(tmpdir(), 'ism-binfmt-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('which platforms a host runs', () => {
  it('reads e_machine from a handler in either byte order, and its F flag', () => {
    expect(parseHandler('qemu-aarch64', AARCH64)).toMatchObject({ machine: 0xb7, fixBinary: true })
    expect(parseHandler('qemu-s390x', S390X)).toMatchObject({ machine: 0x16, fixBinary: false })
    expect(parseHandler('off', AARCH64.replace('enabled', 'disabled'))).toBeUndefined()
  })

  it('a foreign platform runs only through an enabled F handler for its machine', () => {
    writeFileSync(join(dir, 'register'), '')
    writeFileSync(join(dir, 'status'), 'enabled\n')
    writeFileSync(join(dir, 'qemu-s390x'), S390X)
    expect(runSupport({ os: 'linux', architecture: 'arm64' }, 'amd64', dir)).toBeUndefined()
    // Without F the interpreter would have to be inside the container's rootfs.
    expect(runSupport({ os: 'linux', architecture: 's390x' }, 'amd64', dir)).toBeUndefined()
    writeFileSync(join(dir, 'qemu-aarch64'), AARCH64)
    expect(runSupport({ os: 'linux', architecture: 'arm64', variant: 'v8' }, 'amd64', dir)).toMatchObject({ name: 'qemu-aarch64' })
    expect(runSupport({ os: 'linux', architecture: 'amd64' }, 'amd64', '/nonexistent')).toBe('native')
    expect(runSupport({ os: 'linux', architecture: '386' }, 'amd64', '/nonexistent')).toBe('native')
    expect(runSupport({ os: 'windows', architecture: 'amd64' }, 'amd64', dir)).toBeUndefined()
  })

  it('refuses with UNSUPPORTED_PLATFORM naming the step and platform', () => {
    let err: { code?: string; details?: Record<string, unknown> } | undefined
    try {
      requireRunnable({ os: 'linux', architecture: 'riscv64' }, 'RUN make', '/nonexistent')
    } catch (e) {
      err = e as typeof err
    }
    expect(err?.code).toBe(ErrorCodes.UNSUPPORTED_PLATFORM)
    expect(err?.details).toMatchObject({ platform: 'linux/riscv64', step: 'RUN make' })
  })
})
