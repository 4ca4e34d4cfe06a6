/**
 * Same image digest, three ways: a builder built directly vs. its printed Dockerfile imported and
 * built; a Dockerfile imported vs. printed and re-imported vs. converted to TypeScript. All FROM the
 * offline busybox base, SOURCE_DATE_EPOCH 0.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { convertDockerfile } from '../../src/codegen/index.js'
import { fromDockerfile, toDockerfile, type BuildOptions, type ImageBuilder } from '../../src/index.js'
import { exportedApp, exportedScripted } from '../helpers/export-builders.js'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'
import { eightSiblings } from '../helpers/sibling-stages.js'

const bed = requireTools(['runc'])
const root = resolve(__dirname, '../..')

describe.skipIf(bed.skip)('export and codegen keep the image digest', () => {
  let work: string
  let opts: BuildOptions
  beforeAll(async () => {
    work = await tmpDir('ism-dfdigest-')
    const context = join(work, 'ctx')
    await mkdir(context)
    await writeFile(join(context, 'a b.txt'), 'spaced\n')
    await writeFile(join(context, 'plain.txt'), 'plain\n')
    // The sibling-stages builder's context: files a, b and an archive e.tar.gz.
    await writeFile(join(context, 'a'), 'a\n')
    await writeFile(join(context, 'b'), 'b\n')
    await mkdir(join(work, 'e', 'e-dir'), { recursive: true })
    await writeFile(join(work, 'e', 'e-dir', 'e.txt'), 'e\n')
    await runTool('tar', ['-czf', join(context, 'e.tar.gz'), '-C', join(work, 'e'), 'e-dir'])
    opts = { context, cacheDir: join(work, 'cache'), sourceDateEpoch: 0, network: 'none' }
  })
  afterAll(() => cleanupTmpDirs())

  const digest = async (b: ImageBuilder) => (await b.build(opts)).digest

  const builders: readonly (readonly [string, () => ImageBuilder])[] = [
    ['quoting, two stages, exec-form fallback', () => exportedApp()],
    ['heredoc, mounts, marked words, ONBUILD, HEALTHCHECK', exportedScripted],
    ['eight sibling stages combined by COPY --from', () => eightSiblings(`oci-archive:${busyboxArchive()}`)],
  ]
  for (const [name, make] of builders) {
    it(`builder (${name}): print → parse → build gives the builder's digest`, async () => {
      const builder = make()
      const printed = toDockerfile(builder)
      const imported = fromDockerfile(printed)
      // Vertex keys differ (the builder's literal words come back as Dockerfile words, marked for
      // expansion), the image must not.
      expect(await digest(imported.target)).toBe(await digest(builder))
    }, 240_000)
  }

  it('fixture Dockerfile: imported, printed and re-imported, and converted to TypeScript all build one digest', async () => {
    const text = readFileSync(join(root, 'test/fixtures/dockerfile-export/app.Dockerfile'), 'utf8')
    const buildArgs = { BASE: `oci-archive:${busyboxArchive()}`, VERSION: '2.5' }
    const imported = fromDockerfile(text, { buildArgs })
    const reimported = fromDockerfile(toDockerfile(imported.target, { names: imported.stages }), { buildArgs })
    const file = join(work, 'build.ts')
    writeFileSync(file, convertDockerfile(text, { importFrom: join(root, 'src', 'index.js') }))
    const mod = (await import(file)) as { target: (a: Record<string, string>) => ImageBuilder }
    const generated = mod.target(buildArgs)

    const expected = await digest(imported.target)
    expect(await digest(reimported.target)).toBe(expected)
    expect(await digest(generated)).toBe(expected)
  }, 240_000)
})
