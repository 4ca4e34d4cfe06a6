/**
 * examples/dockerfile-to-ts, offline: `imagesmith convert Dockerfile -o build.ts` regenerates the
 * committed build.ts byte for byte; the module (FROM the busybox archive through its BuildArgs) builds
 * the digest `imagesmith build -f Dockerfile` builds; `imagesmith dockerfile` prints it back.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'

const bed = requireTools(['runc'])
const root = resolve(__dirname, '../..')
const example = join(root, 'examples', 'dockerfile-to-ts')

describe.skipIf(bed.skip)('examples/dockerfile-to-ts', () => {
  let work: string
  beforeAll(async () => {
    work = await tmpDir('ism-df2ts-')
  })
  afterAll(() => cleanupTmpDirs())
  // cwd = the checkout: its tsconfig maps 'imagesmith' to src/ for the build scripts.
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [join(root, 'bin', 'imagesmith.js'), ...args], {
      cwd: root, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), SOURCE_DATE_EPOCH: '0' }, timeout: 300_000,
    })

  it('convert regenerates build.ts exactly', () => {
    const out = join(work, 'build.ts')
    const r = cli(['convert', join(example, 'Dockerfile'), '-o', out])
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(example, 'build.ts'), 'utf8'))
    // Without -o the module goes to stdout.
    expect(cli(['convert', join(example, 'Dockerfile')]).stdout).toBe(readFileSync(out, 'utf8'))
  })

  it('build.ts builds the digest the Dockerfile builds, and prints back as a Dockerfile', () => {
    const base = `oci-archive:${busyboxArchive()}`
    // The example's build args through its typed parameter.
    const script = join(root, 'examples', 'dockerfile-to-ts', `.offline-${process.pid}.ts`)
    writeFileSync(script, `import { target } from './build.js'\nexport default target({ BASE: ${JSON.stringify(base)}, GREETING: 'hi' })\n`)
    try {
      const fromTs = cli(['build', script, '--context', example, '--progress', 'quiet', '--network', 'none'])
      expect(fromTs.status, fromTs.stderr).toBe(0)
      const fromDf = cli(['build', '-f', join(example, 'Dockerfile'), '--build-arg', `BASE=${base}`, '--build-arg', 'GREETING=hi', '--progress', 'quiet', '--network', 'none', example])
      expect(fromDf.status, fromDf.stderr).toBe(0)
      expect(fromTs.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/)
      expect(fromTs.stdout.trim()).toBe(fromDf.stdout.trim())
      // The generated module itself, with the CLI's --build-arg: its default FROM (busybox:1.36 from
      // Docker Hub, unreachable here) must give way to the flag's base.
      const direct = cli(['build', join(example, 'build.ts'), '--context', example, '--build-arg', `BASE=${base}`, '--build-arg', 'GREETING=hi', '--progress', 'quiet', '--network', 'none'])
      expect(direct.status, direct.stderr).toBe(0)
      expect(direct.stdout.trim()).toBe(fromDf.stdout.trim())

      const printed = cli(['dockerfile', script])
      expect(printed.status, printed.stderr).toBe(0)
      expect(printed.stdout).toContain(`FROM ${base} AS stage-1\nWORKDIR /src\nCOPY greet.sh ./\nRUN <<'EOF'\nset -e\n`)
      expect(printed.stdout).toContain('ENTRYPOINT ["/usr/local/bin/greet"]\n')
    } finally {
      spawnSync('rm', ['-f', script])
    }
  }, 300_000)
})
