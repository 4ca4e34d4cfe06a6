import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, linkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { text } from 'node:stream/consumers'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TarArchive, TarFormatError } from '../../src/sources/tar-index.js'

let dir: string
const long = `${'d'.repeat(120)}/${'f'.repeat(150)}.json`
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ism-tarindex-'))
  const src = join(dir, 'src')
  mkdirSync(join(src, 'blobs', 'sha256'), { recursive: true })
  mkdirSync(join(src, 'id1'))
  mkdirSync(join(src, 'd'.repeat(120)))
  writeFileSync(join(src, 'blobs', 'sha256', 'aa'), 'layer bytes')
  writeFileSync(join(src, long), '{"long":true}')
  writeFileSync(join(src, 'empty'), '')
  symlinkSync('../blobs/sha256/aa', join(src, 'id1', 'layer.tar'))
  linkSync(join(src, 'blobs', 'sha256', 'aa'), join(src, 'hard'))
  for (const format of ['gnu', 'pax', 'ustar']) {
    const names = format === 'ustar' ? ['blobs', 'id1', 'hard', 'empty'] : ['blobs', 'id1', 'hard', 'empty', 'd'.repeat(120)]
    execFileSync('tar', [`--format=${format}`, '-cf', join(dir, `${format}.tar`), '-C', src, ...names])
  }
  execFileSync('sh', ['-c', `gzip -c ${join(dir, 'pax.tar')} > ${join(dir, 'pax.tar.gz')}`])
  writeFileSync(join(dir, 'not.tar'), 'just text, not an archive'.repeat(40))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('TarArchive', () => {
  it.each(['gnu', 'pax', 'ustar'])('indexes a %s tar: long names, hard links, symlinks into blobs/', async (format) => {
    const a = await TarArchive.open(join(dir, `${format}.tar`), join(dir, `tmp-${format}`))
    try {
      expect(await text(a.open(a.member('blobs/sha256/aa')!))).toBe('layer bytes')
      expect(await text(a.open(a.member('./id1/layer.tar')!))).toBe('layer bytes')
      expect(await text(a.open(a.member('hard')!))).toBe('layer bytes')
      expect((await a.read(a.member('empty')!, 10)).length).toBe(0)
      if (format !== 'ustar') expect((await a.read(a.member(long)!, 100)).toString()).toBe('{"long":true}')
      expect(a.has('blobs/sha256')).toBe(false) // directories are not members
    } finally {
      await a.close()
    }
  })

  it('decompresses a gzip\'d archive to a temp file and removes it on close', async () => {
    const tmp = join(dir, 'tmp-gz')
    const a = await TarArchive.open(join(dir, 'pax.tar.gz'), tmp)
    expect(await text(a.open(a.member('id1/layer.tar')!))).toBe('layer bytes')
    await a.close()
    expect(() => execFileSync('test', ['-e', tmp])).toThrow()
  })

  it('refuses what is not a tar, and a member larger than expected', async () => {
    await expect(TarArchive.open(join(dir, 'not.tar'), join(dir, 'x'))).rejects.toBeInstanceOf(TarFormatError)
    const a = await TarArchive.open(join(dir, 'pax.tar'), join(dir, 'y'))
    await expect(a.read(a.member('hard')!, 4)).rejects.toBeInstanceOf(TarFormatError)
    await a.close()
  })
})
