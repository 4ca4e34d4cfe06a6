import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hostPlatform, ociArch } from '../../src/oci/platform.js'
import { isTarHeader, sniff, sniffFile } from '../../src/util/sniff.js'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ism-sniff-'))
  writeFileSync(join(dir, 'a.txt'), 'hello\n'.repeat(200))
  execFileSync('tar', ['-cf', join(dir, 'a.tar'), '-C', dir, 'a.txt'])
  for (const [tool, ext] of [['gzip', 'gz'], ['bzip2', 'bz2'], ['xz', 'xz'], ['zstd', 'zst']] as const) {
    writeFileSync(join(dir, `a.tar.${ext}`), execFileSync(tool, ['-c', join(dir, 'a.tar')]))
  }
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('sniff', () => {
  it.each([
    ['a.tar', 'tar'],
    ['a.tar.gz', 'gzip'],
    ['a.tar.bz2', 'bzip2'],
    ['a.tar.xz', 'xz'],
    ['a.tar.zst', 'zstd'],
    ['a.txt', 'unknown'],
  ])('tells %s is %s from its bytes', async (name, kind) => {
    expect(await sniffFile(join(dir, name))).toBe(kind)
  })

  it('needs a whole header block with a matching checksum to call it tar', () => {
    const block = execFileSync('tar', ['-cf', '-', '-C', dir, 'a.txt']).subarray(0, 512)
    expect(isTarHeader(block)).toBe(true)
    expect(sniff(block.subarray(0, 511))).toBe('unknown')
    const broken = Buffer.from(block)
    broken[0] = broken[0]! ^ 1
    expect(sniff(broken)).toBe('unknown')
    expect(sniff(Buffer.alloc(0))).toBe('unknown')
  })

  it('reads magic numbers from short buffers', () => {
    expect(sniff(Buffer.from([0x1f, 0x8b]))).toBe('gzip')
    expect(sniff(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd')
    expect(sniff(Buffer.from('BZh9'))).toBe('bzip2')
    expect(sniff(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe('xz')
  })
})

describe('host architecture', () => {
  it('maps Node arch names to OCI ones', () => {
    expect(ociArch('x64')).toBe('amd64')
    expect(ociArch('ia32')).toBe('386')
    expect(ociArch('arm64')).toBe('arm64')
    expect(ociArch('riscv64')).toBe('riscv64')
    expect(hostPlatform()).toEqual({ os: 'linux', architecture: ociArch(process.arch) })
  })
})
