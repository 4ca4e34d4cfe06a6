/**
 * `imagesmith binfmt` against this host's real /proc/sys/fs/binfmt_misc (root, qemu-user-static
 * installed by the test bed): the listing, and `--install` registering a handler, then again (idempotent).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { main } from '../../src/cli/main.js'
import { BINFMT_DIR } from '../../src/ops/platform-support.js'
import { ociArch } from '../../src/oci/platform.js'
import { arm64Unavailable } from '../helpers/testbed.js'

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s) })
  return { code, out, err }
}

// mips64el: a qemu target no other suite runs steps for, so registering it for a moment changes nothing they see.
const HANDLER = `${BINFMT_DIR}/qemu-mips64el`
const usable = process.getuid?.() === 0 && existsSync('/usr/lib/binfmt.d/qemu-mips64el.conf') && arm64Unavailable() === undefined && ociArch() === 'amd64'

describe.skipIf(!usable)('imagesmith binfmt (the real binfmt_misc)', () => {
  it('lists the provisioned aarch64 handler with its F flag; --install arm64 again is a no-op', async () => {
    const list = await cli(['binfmt'])
    expect(list.code).toBe(0)
    expect(list.out).toMatch(/^linux\/arm64 +qemu-aarch64 +F +\/\S+$/m)
    const again = await cli(['binfmt', '--install', 'arm64', '--json'])
    expect(again.code).toBe(0)
    expect(again.err).toBe('binfmt: arm64: already registered\n')
    expect(JSON.parse(again.out)).toMatchObject({ supported: expect.arrayContaining(['linux/amd64', 'linux/arm64']), emulators: expect.arrayContaining(['qemu-aarch64']) })
  })

  it('--install registers a handler from qemu-user-static\'s .conf with the F flag, and a second run leaves it', async () => {
    const before = existsSync(HANDLER)
    try {
      if (before) writeFileSync(HANDLER, '-1')
      const first = await cli(['binfmt', '--install', 'mips64le'])
      expect(first.code).toBe(0)
      expect(first.err).toBe('binfmt: mips64le: registered\n')
      expect(first.out).toMatch(/^linux\/mips64le +qemu-mips64el +F /m)
      expect(readFileSync(HANDLER, 'utf8')).toMatch(/^enabled\n[\s\S]*^flags: \w*F\w*$/m)
      const second = await cli(['binfmt', '--install', 'mips64le,arm64'])
      expect(second.code).toBe(0)
      expect(second.err).toBe('binfmt: mips64le: already registered\nbinfmt: arm64: already registered\n')
    } finally {
      if (!before && existsSync(HANDLER)) writeFileSync(HANDLER, '-1')
    }
  })
})
