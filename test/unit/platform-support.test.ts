import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import { parseHandler, requireEmulation, requireRunnable, runPlatforms, runSupport } from '../../src/ops/platform-support.js'
import { image } from '../../src/index.js'

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

describe('the emulator check before a build', () => {
  const conf = mkdtempSync(join(tmpdir(), 'ism-binfmt-conf-'))
  const empty = mkdtempSync(join(tmpdir(), 'ism-binfmt-empty-'))
  afterAll(() => {
    rmSync(conf, { recursive: true, force: true })
    rmSync(empty, { recursive: true, force: true })
  })
  const arm64 = [{ platform: { os: 'linux', architecture: 'arm64' }, step: 'RUN uname -m' }]
  const caught = (f: () => void): { code?: string; message?: string; details?: Record<string, unknown> } | undefined => {
    try {
      f()
    } catch (e) {
      return e as { code?: string; message?: string; details?: Record<string, unknown> }
    }
    return undefined
  }

  it('names the platform, the host and every missing fix: qemu-user-static, the binfmt_misc mount, the handler', () => {
    const err = caught(() => requireEmulation(arm64, { host: 'amd64', binfmtDir: empty, confDir: empty }))
    expect(err?.code).toBe(ErrorCodes.UNSUPPORTED_PLATFORM)
    expect(err?.details).toMatchObject({ platform: 'linux/arm64', host: 'linux/amd64', step: 'RUN uname -m' })
    expect(err?.details?.fix).toEqual([
      'apt-get install qemu-user-static',
      `mount -t binfmt_misc binfmt_misc ${empty}`,
      'imagesmith binfmt --install arm64',
    ])
    for (const f of err?.details?.fix as string[]) expect(err?.message).toContain(f)
  })

  it('asks only for the registration once qemu-user-static is installed and binfmt_misc mounted; passes with an F handler', () => {
    writeFileSync(join(conf, 'qemu-aarch64.conf'), ':qemu-aarch64:M::\\x7fELF:\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OCPF\n')
    const bin = mkdtempSync(join(tmpdir(), 'ism-binfmt-reg-'))
    try {
      writeFileSync(join(bin, 'register'), '')
      writeFileSync(join(bin, 'qemu-aarch64'), AARCH64.replace('flags: POCF', 'flags: POC'))
      const err = caught(() => requireEmulation(arm64, { host: 'amd64', binfmtDir: bin, confDir: conf }))
      expect(err?.details?.fix).toEqual(['imagesmith binfmt --install arm64'])
      writeFileSync(join(bin, 'qemu-aarch64'), AARCH64)
      expect(caught(() => requireEmulation(arm64, { host: 'amd64', binfmtDir: bin, confDir: conf }))).toBeUndefined()
      // Native platforms never look at binfmt_misc.
      expect(caught(() => requireEmulation([{ platform: { os: 'linux', architecture: 'amd64' }, step: 'RUN x' }], { host: 'amd64', binfmtDir: empty }))).toBeUndefined()
    } finally {
      rmSync(bin, { recursive: true, force: true })
    }
  })

  it('a non-Linux platform is refused with no emulator to install', () => {
    const err = caught(() => requireEmulation([{ platform: { os: 'windows', architecture: 'amd64' }, step: 'RUN dir' }], { host: 'amd64', binfmtDir: empty, confDir: empty }))
    expect(err?.code).toBe(ErrorCodes.UNSUPPORTED_PLATFORM)
    expect(err?.message).toContain('Linux programs only')
    expect(err?.details?.fix).toBeUndefined()
  })

  it("lists each platform of a graph's RUN vertices once, the build's platform for vertices without one", () => {
    const graph = image().copy('a', '/a').run(['uname', '-m']).run(['true']).graph({ platform: { os: 'linux', architecture: 'arm64' } })
    expect(runPlatforms(graph, { os: 'linux', architecture: 'amd64' })).toEqual([{ platform: { os: 'linux', architecture: 'arm64' }, step: 'RUN ["uname", "-m"]' }])
    expect(runPlatforms(image().copy('a', '/a').graph(), { os: 'linux', architecture: 'amd64' })).toEqual([])
  })
})
