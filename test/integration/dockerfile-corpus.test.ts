/**
 * The real-world Dockerfiles of ../shared/corpus (when present), through export and codegen:
 * - parse → print → parse gives the same graph (every vertex key, in order);
 * - parse → TypeScript module → import gives the same graph, and all modules type-check in one
 *   tsc run under the project's strict settings.
 * No file is refused: `RUN --security=insecure`, `--network=host` and `--mount=type=ssh` are
 * lowered like any other flag (BuildKit refuses them at build time, without the entitlement or the
 * forwarded socket, and so does imagesmith). A refusal would be listed and fail the test.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { convertDockerfile } from '../../src/codegen/index.js'
import { fromDockerfile, isImagesmithError, toDockerfile, type ImageBuilder } from '../../src/index.js'
import { findCorpus } from '../../scripts/conformance.js'

const root = resolve(__dirname, '../..')
const found = findCorpus()
const corpus = found ? join(found, 'real-world') : undefined
if (!corpus) process.stderr.write('dockerfile-corpus: ../shared/corpus not found: only the in-repo fixtures are checked\n')
const fixtures = join(root, 'test', 'fixtures', 'dockerfile')
const files = [
  ...(corpus ? readdirSync(corpus).filter((f) => f.includes('Dockerfile')).sort().map((f) => join(corpus, f)) : []),
  // The project's own parser fixtures too.
  ...readdirSync(fixtures).filter((f) => f.endsWith('Dockerfile')).sort().map((f) => join(fixtures, f)),
]

interface Case { file: string; text: string; imported?: ReturnType<typeof fromDockerfile>; refused?: string }
const cases: Case[] = files.map((path) => {
  const file = path.split('/').slice(-2).join('/')
  const text = readFileSync(path, 'utf8')
  try {
    return { file, text, imported: fromDockerfile(text) }
  } catch (e) {
    if (!isImagesmithError(e)) throw e
    return { file, text, refused: `${e.code}: ${e.message.split('\n')[0]}` }
  }
})
const keys = (b: ImageBuilder) => b.graph().vertices.map((v) => v.id)

const dir = mkdtempSync(join(root, 'test', '.codegen-corpus-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('real-world corpus (when present) and fixtures: export and codegen', () => {
  it('every importable file prints to a Dockerfile that reads back to the same vertex keys', () => {
    const done: string[] = []
    for (const c of cases.filter((x) => x.imported)) {
      const printed = toDockerfile(c.imported!.target, { names: c.imported!.stages })
      expect(keys(fromDockerfile(printed).target), `${c.file}\n${printed}`).toEqual(keys(c.imported!.target))
      done.push(c.file)
    }
    const refused = cases.filter((x) => x.refused).map((x) => `${x.file}: ${x.refused}`)
    process.stdout.write(`round trip: ${done.length} files identical; refused by the importer: ${refused.length}\n${refused.map((r) => `  ${r}\n`).join('')}`)
    expect(refused).toEqual([])
    expect(done.length).toBe(cases.length)
  })

  it('every importable file converts to a module that builds the same graph, and all of them type-check in one tsc run', async () => {
    const generated: string[] = []
    for (const [i, c] of cases.entries()) {
      if (!c.imported) continue
      const file = join(dir, `m${i}.ts`)
      writeFileSync(file, convertDockerfile(c.text, { header: c.file, importFrom: join(root, 'src', 'index.js') }))
      const mod = (await import(file)) as { default: ImageBuilder }
      expect(keys(mod.default), c.file).toEqual(keys(c.imported.target))
      generated.push(file)
      // The same module as `imagesmith convert` writes it (importing 'imagesmith'), for tsc.
      writeFileSync(join(dir, `p${i}.ts`), convertDockerfile(c.text, { header: c.file }))
    }
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: join(root, 'tsconfig.json'), compilerOptions: { noEmit: true, rootDir: root }, include: [join(dir, '*.ts')] }))
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    let out = ''
    try {
      execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', stdio: 'pipe' })
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e)
    }
    expect(out).toBe('')
    expect(generated.length).toBe(cases.length)
  }, 180_000)
})
